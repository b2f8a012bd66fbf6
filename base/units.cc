#include "base/units.h"

#include <array>
#include <cctype>
#include <cstdio>
#include <utility>

namespace shardfs {

namespace {

std::string Lower(std::string_view s) {
  std::string out;
  for (char c : s) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

Result<uint64_t> UnitMultiplier(std::string_view unit) {
  static constexpr std::array<std::pair<const char*, uint64_t>, 16> kUnits = {{
      {"", 1},
      {"b", 1},
      {"k", uint64_t{1} << 10},
      {"kib", uint64_t{1} << 10},
      {"kb", 1000},
      {"m", uint64_t{1} << 20},
      {"mib", uint64_t{1} << 20},
      {"mb", 1000 * 1000},
      {"g", uint64_t{1} << 30},
      {"gib", uint64_t{1} << 30},
      {"gb", uint64_t{1000} * 1000 * 1000},
      {"t", uint64_t{1} << 40},
      {"tib", uint64_t{1} << 40},
      {"tb", uint64_t{1000} * 1000 * 1000 * 1000},
      {"p", uint64_t{1} << 50},
      {"pib", uint64_t{1} << 50},
  }};
  std::string u = Lower(unit);
  if (u == "pb") return uint64_t{1000} * 1000 * 1000 * 1000 * 1000;
  for (const auto& [name, mult] : kUnits) {
    if (u == name) return mult;
  }
  std::string msg = "unknown size unit '";
  msg.append(unit).append("' (use K, M, G, T, KiB, MB, ...)");
  return Status::InvalidArgument(msg);
}

}  // namespace

Result<uint64_t> ParseByteSize(std::string_view text) {
  std::string_view s = text;
  while (!s.empty() && s.front() == ' ') s.remove_prefix(1);
  while (!s.empty() && s.back() == ' ') s.remove_suffix(1);
  auto bad = [&] {
    std::string msg = "'";
    msg.append(text).append("' is not a size (examples: 4096, 512M, 100G, 1.5TiB)");
    return Status::InvalidArgument(msg);
  };
  size_t i = 0;
  auto too_large = [&] {
    std::string msg = "size too large: ";
    msg.append(text);
    return Status::OutOfRange(msg);
  };
  uint64_t whole = 0;
  while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
    if (__builtin_mul_overflow(whole, 10, &whole) ||
        __builtin_add_overflow(whole, static_cast<unsigned>(s[i] - '0'), &whole)) {
      return too_large();
    }
    ++i;
  }
  if (i == 0) return bad();
  // Up to 9 fraction digits, as a numerator over 10^digits.
  uint64_t frac = 0, frac_scale = 1;
  if (i < s.size() && s[i] == '.') {
    ++i;
    size_t start = i;
    while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) {
      if (frac_scale < 1000000000) {
        frac = frac * 10 + static_cast<unsigned>(s[i] - '0');
        frac_scale *= 10;
      }
      ++i;
    }
    if (i == start) return bad();
  }
  std::string_view unit = s.substr(i);
  while (!unit.empty() && unit.front() == ' ') unit.remove_prefix(1);
  auto mult = UnitMultiplier(unit);
  if (!mult.ok()) return mult.status();
  if (frac_scale > 1 && *mult == 1) return bad();  // "1.5" bytes
  uint64_t total = 0;
  if (__builtin_mul_overflow(whole, *mult, &total)) return too_large();
  // frac / frac_scale of the unit, without overflow: frac < 10^9 and frac_scale <= 10^9.
  uint64_t part = (*mult / frac_scale) * frac + (*mult % frac_scale) * frac / frac_scale;
  if (__builtin_add_overflow(total, part, &total) || total > (uint64_t{1} << 63))
    return too_large();
  return total;
}

std::string FormatByteSize(uint64_t bytes) {
  static constexpr std::array<const char*, 6> kNames = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double v = static_cast<double>(bytes);
  size_t u = 0;
  while (v >= 1024 && u + 1 < kNames.size()) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.1f %s", v, kNames[u]);
  return buf;
}

}  // namespace shardfs
