// HTTP pieces the companion API's handlers share: status codes for a Status, JSON responses,
// entity tags, byte ranges, dates, and credentials from an Authorization header.
//
// Thread safety: pure functions.

#ifndef SHARDFS_NET_API_API_HTTP_H_
#define SHARDFS_NET_API_API_HTTP_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "backend/catalog.h"
#include "base/status.h"
#include "net/http_types.h"

namespace shardfs::api {

// The HTTP status for an error: 400 InvalidArgument/NameTooLong, 403 PermissionDenied, 404
// NotFound/NoAttribute, 409 AlreadyExists/NotEmpty/NotDirectory/IsDirectory/Busy, 507
// NoSpace, 501 NotSupported, 503 Unavailable, 504 DeadlineExceeded, else 500.
unsigned HttpStatusOf(const Status& s);

// A JSON body (invalid UTF-8 in strings replaced, never thrown on), with no caching.
net::HttpResponse JsonResponse(unsigned status, const nlohmann::json& body);
// {"code": CodeName, "message": ...} with HttpStatusOf(s), or `status` if given.
net::HttpResponse ErrorResponse(const Status& s, unsigned status = 0);

// The strong entity tag of an inode's current contents, quoted: "ino-mtime-size" in hex.
std::string ETagOf(const backend::InodeAttr& a);
// True if the If-Match / If-None-Match style list `header` ("*", or tags separated by commas,
// weak ones "W/" included) names `etag` (or anything, for "*" when `exists`).
bool ETagListMatches(std::string_view header, const std::string& etag, bool exists);

// "2026-11-22T09:00:00.123Z" (RFC 3339, UTC, milliseconds).
std::string FormatRfc3339(int64_t ns);
// "Sun, 22 Nov 2026 09:00:00 GMT" (RFC 9110 IMF-fixdate).
std::string FormatHttpDate(int64_t ns);

// A single byte range of a body of `size` bytes, from a Range header.
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
};
// The range asked for: nullopt for no header, a header that is not one "bytes=" range (more
// than one range is served whole, as RFC 9110 allows), or a malformed one. OutOfRange if it
// starts past the end (416).
Result<std::optional<ByteRange>> ParseRange(std::string_view header, uint64_t size);

// The token of an Authorization header: "Bearer TOKEN", or "Basic base64(user:TOKEN)" (any
// user name; WebDAV clients send app passwords so). "" if there is none.
std::string TokenFromAuthorization(std::string_view header);

// Decodes standard base64 (with or without padding). InvalidArgument if malformed.
Result<std::string> Base64Decode(std::string_view in);

// The JSON of an entry as the REST API lists it; `path` relative to the device's scope.
nlohmann::json EntryJson(const std::string& name, const std::string& path,
                         const backend::InodeAttr& a);
// A paired device as the API lists it: id, name, read_only, root, created, last_used (null:
// never), revoked (and revoked_at); never its token hash.
nlohmann::json DeviceJson(const backend::DeviceRecord& d);

// A small request body (JSON, XML) collected whole, then answered by `handle`: 413 at once for
// a declared length over `limit` (the server cuts off a chunked one there too); a request
// without a body is answered at once with handle("").
net::Dispatch CollectBody(const net::HttpRequestHead& head, uint64_t limit,
                          std::function<net::HttpResponse(std::string)> handle);

// A decimal number of 1 to 19 digits and nothing else (no sign, no spaces), or nullopt.
std::optional<uint64_t> ParseDecimal(std::string_view s);

// An mtime as clients send it (X-OC-Mtime, tus's "mtime" metadata): seconds since the epoch,
// fractions allowed, from 0 to 1e11; in nanoseconds, or nullopt if it is not one.
std::optional<int64_t> ParseEpochSeconds(std::string_view s);

// Permission bits as sent in a `mode` parameter: octal digits ("644", "0755"), at most 07777;
// nullopt if not.
std::optional<uint32_t> ParseMode(std::string_view s);

// "file", "folder" or "symlink".
const char* KindName(backend::FileKind k);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_API_HTTP_H_
