#include "net/api/api_http.h"

#include <cstdio>
#include <cstdlib>
#include <ctime>

#include "net/api/api_path.h"

namespace shardfs::api {

unsigned HttpStatusOf(const Status& s) {
  switch (s.code()) {
    case Code::kOk:
      return 200;
    case Code::kInvalidArgument:
    case Code::kNameTooLong:
    case Code::kOutOfRange:
      return 400;
    case Code::kPermissionDenied:
      return 403;
    case Code::kNotFound:
    case Code::kNoAttribute:
      return 404;
    case Code::kAlreadyExists:
    case Code::kNotEmpty:
    case Code::kNotDirectory:
    case Code::kIsDirectory:
    case Code::kBusy:
      return 409;
    case Code::kNoSpace:
      return 507;
    case Code::kNotSupported:
      return 501;
    case Code::kUnavailable:
      return 503;
    case Code::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

net::HttpResponse JsonResponse(unsigned status, const nlohmann::json& body) {
  net::HttpResponse r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.headers.emplace_back("Cache-Control", "no-store");
  r.body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  r.body.push_back('\n');
  return r;
}

net::HttpResponse ErrorResponse(const Status& s, unsigned status) {
  return JsonResponse(status != 0 ? status : HttpStatusOf(s),
                      {{"code", std::string(CodeName(s.code()))}, {"message", s.message()}});
}

std::string ETagOf(const backend::InodeAttr& a) {
  char buf[80];
  std::snprintf(buf, sizeof buf, "\"%llx-%llx-%llx\"", static_cast<unsigned long long>(a.ino),
                static_cast<unsigned long long>(a.mtime_ns),
                static_cast<unsigned long long>(a.size));
  return buf;
}

bool ETagListMatches(std::string_view header, const std::string& etag, bool exists) {
  for (std::string_view t : SplitOn(header, ',')) {
    while (!t.empty() && (t.front() == ' ' || t.front() == '\t')) t.remove_prefix(1);
    while (!t.empty() && (t.back() == ' ' || t.back() == '\t')) t.remove_suffix(1);
    if (t == "*") {
      if (exists) return true;
      continue;
    }
    if (t.substr(0, 2) == "W/") t.remove_prefix(2);
    if (exists && t == etag) return true;
  }
  return false;
}

namespace {
std::tm UtcTime(int64_t ns) {
  time_t secs = static_cast<time_t>(ns / 1000000000);
  if (ns < 0 && ns % 1000000000 != 0) --secs;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  return tm;
}
}  // namespace

std::string FormatRfc3339(int64_t ns) {
  std::tm tm = UtcTime(ns);
  int64_t ms = ((ns % 1000000000) + 1000000000) % 1000000000 / 1000000;
  char buf[64];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

std::string FormatHttpDate(int64_t ns) {
  std::tm tm = UtcTime(ns);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::optional<uint64_t> ParseDecimal(std::string_view s) {
  if (s.empty() || s.size() > 19 || s.find_first_not_of("0123456789") != std::string_view::npos) {
    return std::nullopt;
  }
  return std::stoull(std::string(s));
}

std::optional<int64_t> ParseEpochSeconds(std::string_view s) {
  // Exact to the nanosecond (a double is not: 1.7e18 ns needs 61 bits): whole seconds, then
  // at most nine digits of fraction counted, the rest ignored.
  const size_t dot = s.find('.');
  auto whole = ParseDecimal(s.substr(0, dot));
  if (!whole || *whole > 100'000'000'000) return std::nullopt;
  int64_t ns = static_cast<int64_t>(*whole) * 1'000'000'000;
  if (dot == std::string_view::npos) return ns;
  std::string_view fraction = s.substr(dot + 1);
  int64_t scale = 100'000'000;
  for (char c : fraction) {
    if (c < '0' || c > '9') return std::nullopt;
    ns += (c - '0') * scale;
    scale /= 10;
  }
  return ns;
}

std::optional<uint32_t> ParseMode(std::string_view s) {
  if (s.empty() || s.size() > 5) return std::nullopt;
  uint32_t mode = 0;
  for (char c : s) {
    if (c < '0' || c > '7') return std::nullopt;
    mode = mode * 8 + static_cast<uint32_t>(c - '0');
  }
  if (mode > 07777) return std::nullopt;
  return mode;
}

Result<std::optional<ByteRange>> ParseRange(std::string_view header, uint64_t size) {
  constexpr std::string_view kPrefix = "bytes=";
  if (header.substr(0, kPrefix.size()) != kPrefix) return std::optional<ByteRange>();
  std::string_view spec = header.substr(kPrefix.size());
  if (spec.find(',') != std::string_view::npos) return std::optional<ByteRange>();
  size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return std::optional<ByteRange>();
  auto number = [](std::string_view s, uint64_t* out) {
    auto n = ParseDecimal(s);
    if (n) *out = *n;
    return n.has_value();
  };
  std::string_view first = spec.substr(0, dash), last = spec.substr(dash + 1);
  uint64_t a = 0, b = 0;
  if (first.empty()) {  // the last b bytes
    if (!number(last, &b)) return std::optional<ByteRange>();
    if (b == 0) return Status::OutOfRange("an empty suffix range");
    uint64_t n = std::min(b, size);
    if (n == 0) return Status::OutOfRange("a range of an empty body");
    return std::optional<ByteRange>(ByteRange{size - n, n});
  }
  if (!number(first, &a)) return std::optional<ByteRange>();
  if (!last.empty()) {
    if (!number(last, &b) || b < a) return std::optional<ByteRange>();
  } else {
    b = size == 0 ? 0 : size - 1;
  }
  if (a >= size) return Status::OutOfRange("range starts at or past the end");
  b = std::min(b, size - 1);
  return std::optional<ByteRange>(ByteRange{a, b - a + 1});
}

Result<std::string> Base64Decode(std::string_view in) {
  auto value = [](char c) -> int {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    if (c == '+') return 62;
    if (c == '/') return 63;
    return -1;
  };
  while (!in.empty() && in.back() == '=') in.remove_suffix(1);
  if (in.size() % 4 == 1) return Status::InvalidArgument("malformed base64");
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : in) {
    int v = value(c);
    if (v < 0) return Status::InvalidArgument("malformed base64");
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

std::string TokenFromAuthorization(std::string_view header) {
  auto starts = [&](std::string_view scheme) {
    if (header.size() <= scheme.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i) {
      if (std::tolower(static_cast<unsigned char>(header[i])) != scheme[i]) return false;
    }
    return header[scheme.size()] == ' ';
  };
  if (starts("bearer")) {
    std::string_view t = header.substr(7);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    return std::string(t);
  }
  if (starts("basic")) {
    std::string_view t = header.substr(6);
    while (!t.empty() && t.front() == ' ') t.remove_prefix(1);
    auto decoded = Base64Decode(t);
    if (!decoded.ok()) return "";
    size_t colon = decoded->find(':');
    return colon == std::string::npos ? "" : decoded->substr(colon + 1);
  }
  return "";
}

nlohmann::json DeviceJson(const backend::DeviceRecord& d) {
  nlohmann::json j = {{"id", d.id},
                      {"name", d.name},
                      {"read_only", d.read_only},
                      {"root", d.root},
                      {"created", FormatRfc3339(d.created_ns)},
                      {"revoked", d.revoked_ns != 0}};
  j["last_used"] =
      d.last_used_ns != 0 ? nlohmann::json(FormatRfc3339(d.last_used_ns)) : nlohmann::json(nullptr);
  if (d.revoked_ns != 0) j["revoked_at"] = FormatRfc3339(d.revoked_ns);
  return j;
}

namespace {
class BufferSink : public net::BodySink {
 public:
  explicit BufferSink(std::function<net::HttpResponse(std::string)> finish)
      : finish_(std::move(finish)) {}
  Status Write(ByteSpan data) override {
    body_.append(reinterpret_cast<const char*>(data.data()), data.size());
    return Status::Ok();
  }
  net::HttpResponse Finish() override { return finish_(std::move(body_)); }
  net::HttpResponse Fail(const Status& s) override { return ErrorResponse(s); }

 private:
  std::function<net::HttpResponse(std::string)> finish_;
  std::string body_;
};
}  // namespace

net::Dispatch CollectBody(const net::HttpRequestHead& head, uint64_t limit,
                          std::function<net::HttpResponse(std::string)> handle) {
  if (head.content_length && *head.content_length > limit) {
    return net::Dispatch::Respond(ErrorResponse(
        Status::InvalidArgument("a request body over " + std::to_string(limit) + " bytes"), 413));
  }
  if (!head.has_body()) return net::Dispatch::Respond(handle(""));
  return net::Dispatch::Stream(std::make_unique<BufferSink>(std::move(handle)), limit);
}

const char* KindName(backend::FileKind k) {
  switch (k) {
    case backend::FileKind::kDirectory:
      return "folder";
    case backend::FileKind::kSymlink:
      return "symlink";
    default:
      return "file";
  }
}

nlohmann::json EntryJson(const std::string& name, const std::string& path,
                         const backend::InodeAttr& a) {
  nlohmann::json j = {{"name", name},
                      {"path", path},
                      {"type", KindName(a.kind)},
                      {"size", a.size},
                      {"mtime", FormatRfc3339(a.mtime_ns)},
                      {"mtime_ns", a.mtime_ns},
                      {"mode", a.mode},
                      {"inode", a.ino},
                      {"links", a.nlink},
                      {"uid", a.uid},
                      {"gid", a.gid},
                      {"atime_ns", a.atime_ns},
                      {"ctime_ns", a.ctime_ns}};
  if (a.kind == backend::FileKind::kFile) j["etag"] = ETagOf(a);
  return j;
}

}  // namespace shardfs::api
