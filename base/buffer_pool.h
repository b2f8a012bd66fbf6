// Reusable byte buffers for the read path: a chunk read (DESIGN.md section 4) needs a few
// buffers of up to a chunk's size each, and fresh ones cost page faults and the kernel's
// zeroing for every chunk, and zeroing again if they are vectors. A pool keeps buffers that
// were given back, up to a byte budget, and hands them out again uninitialised.
//
// Thread safety: all methods may be called from many threads at once; a Buffer belongs to
// one thread at a time.

#ifndef SHARDFS_BASE_BUFFER_POOL_H_
#define SHARDFS_BASE_BUFFER_POOL_H_

#include <cstddef>
#include <memory>
#include <vector>

#include "base/bytes.h"
#include "base/thread_annotations.h"

namespace shardfs {

class BufferPool {
 public:
  // A buffer of the pool: size() bytes of unspecified contents. Given back to its pool when
  // destroyed (the pool must outlive it).
  class Buffer {
   public:
    Buffer() = default;
    Buffer(Buffer&& other) noexcept { *this = std::move(other); }
    Buffer& operator=(Buffer&& other) noexcept;
    ~Buffer() { Release(); }

    uint8_t* data() { return memory_.get(); }
    const uint8_t* data() const { return memory_.get(); }
    size_t size() const { return size_; }
    MutableByteSpan span() { return {memory_.get(), size_}; }
    ByteSpan span() const { return {memory_.get(), size_}; }

   private:
    friend class BufferPool;
    void Release();

    BufferPool* pool_ = nullptr;
    std::unique_ptr<uint8_t[]> memory_;
    size_t capacity_ = 0;
    size_t size_ = 0;
  };

  // Keeps at most `kept_bytes` of given-back buffers (capacities) for reuse.
  explicit BufferPool(size_t kept_bytes) : kept_limit_(kept_bytes) {}
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  // A buffer of `size` bytes: the smallest kept one that is large enough, else a new one
  // whose capacity is `size` rounded up to a power of two (at least 64 KiB), so that buffers
  // for sizes that vary can be reused.
  Buffer Get(size_t size) EXCLUDES(mu_);

  // Bytes of buffers kept for reuse now.
  size_t kept_bytes() const EXCLUDES(mu_);

  // The process's pool for chunk-sized buffers (keeps up to 32 MiB).
  static BufferPool& Shared();

 private:
  void Put(std::unique_ptr<uint8_t[]> memory, size_t capacity) EXCLUDES(mu_);

  const size_t kept_limit_;
  mutable Mutex mu_;
  struct Kept {
    std::unique_ptr<uint8_t[]> memory;
    size_t capacity = 0;
  };
  std::vector<Kept> kept_ GUARDED_BY(mu_);
  size_t kept_total_ GUARDED_BY(mu_) = 0;
};

}  // namespace shardfs

#endif  // SHARDFS_BASE_BUFFER_POOL_H_
