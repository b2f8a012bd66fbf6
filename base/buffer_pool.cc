#include "base/buffer_pool.h"

#include <bit>

namespace shardfs {

BufferPool::Buffer& BufferPool::Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = other.pool_;
    memory_ = std::move(other.memory_);
    capacity_ = other.capacity_;
    size_ = other.size_;
    other.pool_ = nullptr;
    other.capacity_ = other.size_ = 0;
  }
  return *this;
}

void BufferPool::Buffer::Release() {
  if (pool_ != nullptr && memory_) pool_->Put(std::move(memory_), capacity_);
  pool_ = nullptr;
  memory_.reset();
  capacity_ = size_ = 0;
}

BufferPool::Buffer BufferPool::Get(size_t size) {
  Buffer b;
  b.pool_ = this;
  b.size_ = size;
  {
    MutexLock lock(&mu_);
    size_t best = kept_.size();
    for (size_t i = 0; i < kept_.size(); ++i) {
      if (kept_[i].capacity >= size &&
          (best == kept_.size() || kept_[i].capacity < kept_[best].capacity)) {
        best = i;
      }
    }
    if (best != kept_.size()) {
      b.memory_ = std::move(kept_[best].memory);
      b.capacity_ = kept_[best].capacity;
      kept_total_ -= b.capacity_;
      kept_[best] = std::move(kept_.back());
      kept_.pop_back();
      return b;
    }
  }
  b.capacity_ = std::bit_ceil(std::max<size_t>(size, size_t{64} << 10));
  b.memory_ = std::make_unique_for_overwrite<uint8_t[]>(b.capacity_);
  return b;
}

void BufferPool::Put(std::unique_ptr<uint8_t[]> memory, size_t capacity) {
  MutexLock lock(&mu_);
  if (kept_total_ + capacity > kept_limit_) return;  // freed as `memory` goes
  kept_total_ += capacity;
  kept_.push_back(Kept{std::move(memory), capacity});
}

size_t BufferPool::kept_bytes() const {
  MutexLock lock(&mu_);
  return kept_total_;
}

BufferPool& BufferPool::Shared() {
  static BufferPool* pool = new BufferPool(size_t{32} << 20);
  return *pool;
}

}  // namespace shardfs
