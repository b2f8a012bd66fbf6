// Fuzz target: what the companion API parses from a request before it touches the drive:
// WebDAV bodies (PROPFIND, PROPPATCH, LOCK: api::dav::Parse*), If headers (api::dav::ParseIf),
// request targets and paths (api::SplitTarget, api::DecodePath, api::SplitPath), Range and
// Authorization headers (api::ParseRange, api::TokenFromAuthorization).
//
// Input byte 0 picks the parser (mod 7); the rest is its input. Checked as well as "no
// crash, no hang, no out-of-bounds read": a decoded path never holds "..", "." , an empty
// name, or a name with '/' or NUL, and encoding it again decodes to the same names; a parsed
// PROPPATCH set's XML parses again as one element; a range lies inside the body.
//
// SHARDFS_WRITE_SEEDS=DIR makes the first input also write the seed corpus
// (tests/fuzz/corpus/webdav/) to DIR.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "net/api/api_http.h"
#include "net/api/api_path.h"
#include "net/api/webdav_xml.h"

namespace {

void Check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "check failed: %s\n", what);
    std::abort();
  }
}

void CheckNames(const shardfs::api::Names& names) {
  for (const auto& n : names) {
    Check(!n.empty() && n != "." && n != "..", "a bad name survived");
    Check(n.find('/') == std::string::npos && n.find('\0') == std::string::npos,
          "a name with / or NUL survived");
    Check(shardfs::api::IsValidUtf8(n), "a name that is not UTF-8 survived");
  }
}

void WriteSeeds(const char* dir) {
  const std::pair<const char*, std::string> seeds[] = {
      {"propfind_allprop",
       std::string(1, 0) +
           "<?xml version=\"1.0\"?><D:propfind xmlns:D=\"DAV:\"><D:allprop/></D:propfind>"},
      {"propfind_prop", std::string(1, 0) +
                            "<propfind xmlns=\"DAV:\"><prop><getetag/><x:a xmlns:x=\"urn:x\"/>"
                            "</prop></propfind>"},
      {"proppatch", std::string(1, 1) +
                        "<D:propertyupdate xmlns:D=\"DAV:\" xmlns:Z=\"http://z/\"><D:set><D:prop>"
                        "<Z:p>v<Z:q/></Z:p></D:prop></D:set><D:remove><D:prop><Z:r/></D:prop>"
                        "</D:remove></D:propertyupdate>"},
      {"lockinfo", std::string(1, 2) +
                       "<D:lockinfo xmlns:D=\"DAV:\"><D:lockscope><D:exclusive/></D:lockscope>"
                       "<D:locktype><D:write/></D:locktype><D:owner><D:href>me</D:href>"
                       "</D:owner></D:lockinfo>"},
      {"if",
       std::string(1, 3) + "<http://h/dav/a> (<opaquelocktoken:1-2> [\"e\"]) (Not <DAV:no-lock>)"},
      {"target", std::string(1, 4) + "/api/v1/list/a%20b/%C3%A9?cursor=x%2Fy&limit=5"},
      {"path", std::string(1, 5) + "/a/./b//%2e%2e/c"},
      {"range", std::string(1, 6) + "bytes=100-199"},
  };
  for (const auto& [name, data] : seeds) {
    std::ofstream(std::string(dir) + "/" + name, std::ios::binary) << data;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static bool seeded = false;
  if (!seeded) {
    seeded = true;
    if (const char* dir = std::getenv("SHARDFS_WRITE_SEEDS")) WriteSeeds(dir);
  }
  if (size == 0) return 0;
  namespace api = shardfs::api;
  namespace dav = shardfs::api::dav;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 7) {
    case 0:
      (void)dav::ParsePropfind(in);
      break;
    case 1: {
      auto ops = dav::ParsePropPatch(in);
      if (ops.ok()) {
        for (const auto& op : *ops) {
          if (op.remove) continue;
          // Written back as it was kept, a set's value is one element again.
          auto again = dav::ParsePropPatch("<D:propertyupdate xmlns:D=\"DAV:\"><D:set><D:prop>" +
                                           op.xml + "</D:prop></D:set></D:propertyupdate>");
          Check(again.ok() && again->size() == 1 && (*again)[0].name == op.name,
                "a kept property value does not parse back");
        }
      }
      break;
    }
    case 2:
      (void)dav::ParseLockInfo(in);
      break;
    case 3: {
      auto lists = dav::ParseIf(in);
      if (lists.ok()) Check(!lists->empty(), "an If header with no list");
      break;
    }
    case 4: {
      auto t = api::SplitTarget(in);
      if (t.ok()) {
        auto names = api::DecodePath(t->path);
        if (names.ok()) CheckNames(*names);
      }
      break;
    }
    case 5: {
      auto names = api::DecodePath(in);
      if (names.ok()) {
        CheckNames(*names);
        auto again = api::DecodePath(api::EncodePath(*names));
        Check(again.ok() && *again == *names, "encode and decode differ");
      }
      auto split = api::SplitPath(in);
      if (split.ok()) CheckNames(*split);
      break;
    }
    case 6: {
      const uint64_t sizes[] = {0, 1, 1000, uint64_t{1} << 40};
      for (uint64_t body : sizes) {
        auto r = api::ParseRange(in, body);
        if (r.ok() && *r) {
          Check((*r)->length > 0 && (*r)->offset + (*r)->length <= body,
                "a range outside the body");
        }
      }
      (void)api::TokenFromAuthorization(in);
      break;
    }
  }
  return 0;
}
