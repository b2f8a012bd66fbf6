// The web dashboard's files (net/api/dashboard/), built into the binary
// (net/api/embed_assets.cmake): nothing is fetched from anywhere at run time.
//
// Thread safety: constant data.

#ifndef SHARDFS_NET_API_DASHBOARD_H_
#define SHARDFS_NET_API_DASHBOARD_H_

#include <string_view>

namespace shardfs::api {

struct DashboardAsset {
  std::string_view path;          // "/", "/assets/app.js", ...
  std::string_view content_type;  // a text type, of UTF-8
  std::string_view data;
};

// The file served at `path`, or nullptr.
const DashboardAsset* FindDashboardAsset(std::string_view path);

}  // namespace shardfs::api

#endif  // SHARDFS_NET_API_DASHBOARD_H_
