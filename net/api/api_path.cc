#include "net/api/api_path.h"

#include <cstdint>

#include "backend/catalog.h"

namespace shardfs::api {

std::vector<std::string_view> SplitOn(std::string_view s, char sep) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (true) {
    size_t j = s.find(sep, i);
    if (j == std::string_view::npos) {
      parts.push_back(s.substr(i));
      return parts;
    }
    parts.push_back(s.substr(i, j - i));
    i = j + 1;
  }
}

bool IsValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<uint8_t>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int n;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      n = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + static_cast<size_t>(n) >= s.size()) return false;  // cut short
    for (int k = 1; k <= n; ++k) {
      auto cc = static_cast<uint8_t>(s[i + static_cast<size_t>(k)]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += static_cast<size_t>(n) + 1;
  }
  return true;
}

namespace {
int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Checks one decoded name of a path.
Status CheckApiName(const std::string& name) {
  if (name == "..") return Status::InvalidArgument("a path may not hold '..'");
  if (name.find('\0') != std::string::npos) return Status::InvalidArgument("NUL in a name");
  if (name.find('/') != std::string::npos) return Status::InvalidArgument("'/' in a name");
  if (name.size() > backend::kMaxNameBytes) {
    return Status::NameTooLong("a name of " + std::to_string(name.size()) + " bytes (at most " +
                               std::to_string(backend::kMaxNameBytes) + ")");
  }
  if (!IsValidUtf8(name)) return Status::InvalidArgument("a name that is not UTF-8");
  return Status::Ok();
}

template <typename Decode>
Result<Names> Split(std::string_view raw, Decode decode) {
  Names out;
  for (std::string_view part : SplitOn(raw, '/')) {
    if (part.empty()) continue;
    SFS_ASSIGN_OR_RETURN(std::string name, decode(part));
    if (name.empty() || name == ".") continue;
    SFS_RETURN_IF_ERROR(CheckApiName(name));
    out.push_back(std::move(name));
  }
  return out;
}
}  // namespace

Result<std::string> PercentDecode(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out.push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return Status::InvalidArgument("a bad percent escape");
    int hi = HexValue(s[i + 1]);
    int lo = HexValue(s[i + 2]);
    if (hi < 0 || lo < 0) return Status::InvalidArgument("a bad percent escape");
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return out;
}

std::string PercentEncode(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (char ch : s) {
    auto c = static_cast<uint8_t>(ch);
    bool unreserved = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(ch);
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Result<Names> DecodePath(std::string_view raw) {
  return Split(raw, [](std::string_view part) { return PercentDecode(part); });
}

Result<Names> SplitPath(std::string_view path) {
  return Split(path, [](std::string_view part) { return Result<std::string>(std::string(part)); });
}

std::string JoinPath(const Names& names) {
  if (names.empty()) return "/";
  std::string out;
  for (const auto& n : names) out += "/" + n;
  return out;
}

std::string EncodePath(const Names& names) {
  if (names.empty()) return "/";
  std::string out;
  for (const auto& n : names) out += "/" + PercentEncode(n);
  return out;
}

Result<Target> SplitTarget(std::string_view target) {
  Target t;
  size_t q = target.find('?');
  t.path = std::string(target.substr(0, q));
  if (q == std::string_view::npos) return t;
  for (std::string_view pair : SplitOn(target.substr(q + 1), '&')) {
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    std::string key(pair.substr(0, eq));
    std::string value(eq == std::string_view::npos ? "" : pair.substr(eq + 1));
    for (char& c : value) {
      if (c == '+') c = ' ';
    }
    SFS_ASSIGN_OR_RETURN(std::string k, PercentDecode(key));
    SFS_ASSIGN_OR_RETURN(std::string v, PercentDecode(value));
    t.query[std::move(k)] = std::move(v);
  }
  return t;
}

bool IsWithin(const Names& names, const Names& prefix) {
  if (names.size() < prefix.size()) return false;
  for (size_t i = 0; i < prefix.size(); ++i) {
    if (names[i] != prefix[i]) return false;
  }
  return true;
}

}  // namespace shardfs::api
