// Byte buffers, hex, little-endian integers, and a bounds-checked reader and writer for the
// binary formats (docs/format.md). Every parser of untrusted bytes reads through ByteReader,
// which cannot read past its input: a short input is an error, never an out-of-bounds read.
//
// Thread safety: plain values; a ByteReader or ByteWriter is used by one thread at a time.

#ifndef SHARDFS_BASE_BYTES_H_
#define SHARDFS_BASE_BYTES_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace shardfs {

using Bytes = std::vector<uint8_t>;
using ByteSpan = std::span<const uint8_t>;
using MutableByteSpan = std::span<uint8_t>;

inline ByteSpan AsBytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}
inline std::string_view AsChars(ByteSpan b) {
  return {reinterpret_cast<const char*>(b.data()), b.size()};
}
inline Bytes ToBytes(std::string_view s) { return Bytes(s.begin(), s.end()); }

// Lower-case hex of `data`.
std::string HexEncode(ByteSpan data);
// Decodes hex (either case). InvalidArgument on an odd length or a non-hex character.
Result<Bytes> HexDecode(std::string_view hex);

// Compares in time independent of the contents (for tags and secrets). False if the sizes
// differ.
bool ConstantTimeEqual(ByteSpan a, ByteSpan b);

// Little-endian fixed-width integers, as every shardfs format stores them.
inline void StoreLE16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline void StoreLE32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline void StoreLE64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
inline uint16_t LoadLE16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline uint32_t LoadLE32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
inline uint64_t LoadLE64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Appends fixed-width fields to a Bytes buffer it does not own.
class ByteWriter {
 public:
  explicit ByteWriter(Bytes* out) : out_(out) {}

  void U8(uint8_t v) { out_->push_back(v); }
  void U16(uint16_t v) {
    Grow(2, [&](uint8_t* p) { StoreLE16(p, v); });
  }
  void U32(uint32_t v) {
    Grow(4, [&](uint8_t* p) { StoreLE32(p, v); });
  }
  void U64(uint64_t v) {
    Grow(8, [&](uint8_t* p) { StoreLE64(p, v); });
  }
  void Raw(ByteSpan b) { out_->insert(out_->end(), b.begin(), b.end()); }
  void Zeros(size_t n) { out_->resize(out_->size() + n, 0); }

 private:
  template <typename F>
  void Grow(size_t n, F&& store) {
    size_t at = out_->size();
    out_->resize(at + n);
    store(out_->data() + at);
  }
  Bytes* out_;
};

// Reads fixed-width fields from a span, front to back. Every read checks the remaining length;
// a read past the end fails (returns false) and leaves the reader failed, so a parser may read
// a whole record and check ok() once at the end.
class ByteReader {
 public:
  explicit ByteReader(ByteSpan in) : in_(in) {}

  bool U8(uint8_t* v) {
    return Take(1, [&](const uint8_t* p) { *v = p[0]; });
  }
  bool U16(uint16_t* v) {
    return Take(2, [&](const uint8_t* p) { *v = LoadLE16(p); });
  }
  bool U32(uint32_t* v) {
    return Take(4, [&](const uint8_t* p) { *v = LoadLE32(p); });
  }
  bool U64(uint64_t* v) {
    return Take(8, [&](const uint8_t* p) { *v = LoadLE64(p); });
  }
  // Copies exactly out.size() bytes.
  bool Raw(MutableByteSpan out) {
    return Take(out.size(), [&](const uint8_t* p) {
      if (!out.empty()) std::memcpy(out.data(), p, out.size());
    });
  }
  // Returns a view of the next n bytes (valid as long as the input is).
  bool View(size_t n, ByteSpan* out) {
    return Take(n, [&](const uint8_t* p) { *out = ByteSpan(p, n); });
  }
  bool Skip(size_t n) {
    return Take(n, [](const uint8_t*) {});
  }

  bool ok() const { return ok_; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  size_t position() const { return pos_; }
  bool AtEnd() const { return ok_ && pos_ == in_.size(); }

 private:
  template <typename F>
  bool Take(size_t n, F&& load) {
    if (!ok_ || n > in_.size() - pos_) {
      ok_ = false;
      return false;
    }
    load(in_.data() + pos_);
    pos_ += n;
    return true;
  }

  ByteSpan in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace shardfs

#endif  // SHARDFS_BASE_BYTES_H_
