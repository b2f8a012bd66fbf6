// Paths and queries of the companion API's requests: a request path decoded into names
// (percent escapes, UTF-8, no "..", no NUL, names of at most 255 bytes), a device's scope
// (the folder it is confined to), and paths encoded again for URLs (WebDAV hrefs).
//
// A scoped path never leaves its scope: ".." is refused rather than resolved, a name may not
// hold '/' (so "%2F" cannot smuggle one in), and the API never follows symlinks.
//
// Thread safety: pure functions.

#ifndef SHARDFS_NET_API_API_PATH_H_
#define SHARDFS_NET_API_API_PATH_H_

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace shardfs::api {

using Names = std::vector<std::string>;

// The parts of `s` between the separators (empty parts kept: "a,,b" gives "a", "", "b").
std::vector<std::string_view> SplitOn(std::string_view s, char sep);

// True if `s` is well-formed UTF-8 (no overlong forms, surrogates or code points past
// U+10FFFF).
bool IsValidUtf8(std::string_view s);

// Decodes the percent escapes of `s` ('+' stays '+'). InvalidArgument for a bad escape.
Result<std::string> PercentDecode(std::string_view s);

// Percent-encodes `s` for a URL path segment (unreserved characters stay as they are).
std::string PercentEncode(std::string_view s);

// The names of a '/'-separated request path (percent-encoded, as sent): empty parts and "."
// are skipped. InvalidArgument for "..", a bad escape, NUL or '/' in a decoded name, or a
// name that is not UTF-8; NameTooLong for a name over 255 bytes.
Result<Names> DecodePath(std::string_view raw);

// The same for a path given in JSON or a command (already decoded): no percent decoding.
Result<Names> SplitPath(std::string_view path);

// "/a/b" for names {"a", "b"}; "/" for none.
std::string JoinPath(const Names& names);

// "/a%20b/c" for names {"a b", "c"}, each name percent-encoded; "/" for none.
std::string EncodePath(const Names& names);

// A request target split into its path (still encoded) and its query parameters (decoded;
// a name given twice keeps its last value). InvalidArgument for a bad escape in the query.
struct Target {
  std::string path;
  std::map<std::string, std::string> query;
};
Result<Target> SplitTarget(std::string_view target);

// True if `names` is `prefix` or inside it.
bool IsWithin(const Names& names, const Names& prefix);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_API_PATH_H_
