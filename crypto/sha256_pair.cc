#include "crypto/sha256_pair.h"

#include <cstring>
#include <utility>

#include <cpuid.h>
#include <immintrin.h>

namespace shardfs::crypto {

namespace {

// FIPS 180-4, section 4.2.2 and 5.3.3.
alignas(16) constexpr uint32_t kRound[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};
constexpr uint32_t kInitial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                  0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
constexpr size_t kBlock = 64;

bool DetectShaExtensions() {
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return false;
  const bool ssse3 = (c & bit_SSSE3) != 0;
  const bool sse41 = (c & bit_SSE4_1) != 0;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  const bool sha = (b & bit_SHA) != 0;
  return ssse3 && sse41 && sha;
}

#define SHARDFS_SHA_TARGET __attribute__((target("sha,ssse3,sse4.1")))

// The eight state words as the SHA instructions want them: {A,B,E,F} and {C,D,G,H}.
struct Lane {
  __m128i abef;
  __m128i cdgh;
};

SHARDFS_SHA_TARGET Lane LoadState(const uint32_t h[8]) {
  __m128i dcba = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h));
  __m128i hgfe = _mm_loadu_si128(reinterpret_cast<const __m128i*>(h + 4));
  __m128i cdab = _mm_shuffle_epi32(dcba, 0xB1);
  __m128i efgh = _mm_shuffle_epi32(hgfe, 0x1B);
  return Lane{_mm_alignr_epi8(cdab, efgh, 8), _mm_blend_epi16(efgh, cdab, 0xF0)};
}

SHARDFS_SHA_TARGET void StoreState(const Lane& s, uint32_t h[8]) {
  __m128i feba = _mm_shuffle_epi32(s.abef, 0x1B);
  __m128i dchg = _mm_shuffle_epi32(s.cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h), _mm_blend_epi16(feba, dchg, 0xF0));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(h + 4), _mm_alignr_epi8(dchg, feba, 8));
}

// Four rounds (group g, rounds 4g..4g+3) of one lane, with w = W[4g..4g+3].
SHARDFS_SHA_TARGET inline void Rounds(Lane& s, __m128i w, int g) {
  __m128i wk = _mm_add_epi32(w, _mm_load_si128(reinterpret_cast<const __m128i*>(kRound + 4 * g)));
  s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, wk);
  std::swap(s.abef, s.cdgh);  // the instruction returned the new {A,B,E,F} in cdgh
  s.cdgh = _mm_sha256rnds2_epu32(s.cdgh, s.abef, _mm_shuffle_epi32(wk, 0x0E));
  std::swap(s.abef, s.cdgh);
}

// W[4g..4g+3] for g >= 4 from the previous sixteen words, held in m[(g-4)%4] .. m[(g-1)%4]:
// W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16].
SHARDFS_SHA_TARGET inline __m128i Schedule(const __m128i m[4], int g) {
  __m128i t = _mm_sha256msg1_epu32(m[g & 3], m[(g + 1) & 3]);  // W[t-16] + s0(W[t-15])
  t = _mm_add_epi32(t, _mm_alignr_epi8(m[(g + 3) & 3], m[(g + 2) & 3], 4));  // + W[t-7]
  return _mm_sha256msg2_epu32(t, m[(g + 3) & 3]);                            // + s1(W[t-2])
}

// Compresses `blocks` consecutive 64-byte blocks into each lane's state.
SHARDFS_SHA_TARGET void CompressPair(uint32_t ha[8], uint32_t hb[8], const uint8_t* pa,
                                     const uint8_t* pb, size_t blocks) {
  const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
  Lane a = LoadState(ha);
  Lane b = LoadState(hb);
  for (size_t blk = 0; blk < blocks; ++blk, pa += kBlock, pb += kBlock) {
    const Lane a0 = a;
    const Lane b0 = b;
    __m128i ma[4], mb[4];
    // Unrolled, so the message words stay in registers and the two lanes interleave.
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
      if (g < 4) {
        ma[g] =
            _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pa + 16 * g)), bswap);
        mb[g] =
            _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(pb + 16 * g)), bswap);
      } else {
        ma[g & 3] = Schedule(ma, g);
        mb[g & 3] = Schedule(mb, g);
      }
      Rounds(a, ma[g & 3], g);
      Rounds(b, mb[g & 3], g);
    }
    a.abef = _mm_add_epi32(a.abef, a0.abef);
    a.cdgh = _mm_add_epi32(a.cdgh, a0.cdgh);
    b.abef = _mm_add_epi32(b.abef, b0.abef);
    b.cdgh = _mm_add_epi32(b.cdgh, b0.cdgh);
  }
  StoreState(a, ha);
  StoreState(b, hb);
}

// The padded tail of prefix || body: the bytes after the last whole block, 0x80, zeros, and
// the length in bits; one or two blocks. Returns how many.
size_t Tail(uint8_t prefix, ByteSpan body, uint8_t out[2 * kBlock]) {
  const uint64_t total = body.size() + 1;
  const size_t whole = total / kBlock;
  const size_t rest = total % kBlock;
  std::memset(out, 0, 2 * kBlock);
  if (whole == 0) {
    out[0] = prefix;
    if (!body.empty()) std::memcpy(out + 1, body.data(), body.size());
  } else if (rest > 0) {
    std::memcpy(out, body.data() + (whole * kBlock - 1), rest);
  }
  out[rest] = 0x80;
  const size_t blocks = rest + 1 + 8 <= kBlock ? 1 : 2;
  const uint64_t bits = total * 8;
  for (int i = 0; i < 8; ++i) out[blocks * kBlock - 1 - i] = static_cast<uint8_t>(bits >> (8 * i));
  return blocks;
}

void Digest(const uint32_t h[8], Digest256* out) {
  for (int i = 0; i < 8; ++i) {
    (*out)[4 * i] = static_cast<uint8_t>(h[i] >> 24);
    (*out)[4 * i + 1] = static_cast<uint8_t>(h[i] >> 16);
    (*out)[4 * i + 2] = static_cast<uint8_t>(h[i] >> 8);
    (*out)[4 * i + 3] = static_cast<uint8_t>(h[i]);
  }
}

void HashPrefixed(Sha256Hasher& h, uint8_t prefix, ByteSpan data, Digest256* out) {
  h.Update(ByteSpan(&prefix, 1));
  h.Update(data);
  *out = h.Final();
}

}  // namespace

bool Sha256PairAccelerated() {
  static const bool has = DetectShaExtensions();
  return has;
}

void Sha256PairPortable(uint8_t prefix, ByteSpan a, ByteSpan b, Digest256* out_a,
                        Digest256* out_b) {
  Sha256Hasher h;
  HashPrefixed(h, prefix, a, out_a);
  HashPrefixed(h, prefix, b, out_b);
}

void Sha256Pair(uint8_t prefix, ByteSpan a, ByteSpan b, Digest256* out_a, Digest256* out_b) {
  if (!Sha256PairAccelerated() || a.size() != b.size()) {
    return Sha256PairPortable(prefix, a, b, out_a, out_b);
  }
  uint32_t ha[8], hb[8];
  std::memcpy(ha, kInitial, sizeof(ha));
  std::memcpy(hb, kInitial, sizeof(hb));
  const size_t whole = (a.size() + 1) / kBlock;
  if (whole > 0) {
    // Block 0 is the prefix and the first 63 bytes; block i >= 1 starts at body byte 64i - 1.
    uint8_t first_a[kBlock], first_b[kBlock];
    first_a[0] = prefix;
    first_b[0] = prefix;
    std::memcpy(first_a + 1, a.data(), kBlock - 1);
    std::memcpy(first_b + 1, b.data(), kBlock - 1);
    CompressPair(ha, hb, first_a, first_b, 1);
    if (whole > 1) CompressPair(ha, hb, a.data() + kBlock - 1, b.data() + kBlock - 1, whole - 1);
  }
  uint8_t tail_a[2 * kBlock], tail_b[2 * kBlock];
  const size_t tail_blocks = Tail(prefix, a, tail_a);
  Tail(prefix, b, tail_b);
  CompressPair(ha, hb, tail_a, tail_b, tail_blocks);
  Digest(ha, out_a);
  Digest(hb, out_b);
}

}  // namespace shardfs::crypto
