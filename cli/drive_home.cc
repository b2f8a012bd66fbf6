#include "cli/drive_home.h"

#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include <sys/stat.h>

namespace shardfs::cli {

namespace {

// $VAR if set to an absolute path (the XDG rule: relative values are ignored), else
// $HOME/fallback.
Result<std::string> XdgDir(const char* var, const char* fallback) {
  const char* v = std::getenv(var);
  if (v != nullptr && v[0] == '/') return std::string(v);
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] != '/') {
    return Status::InvalidArgument(std::string("neither $") + var +
                                   " nor $HOME is set: use --home DIR");
  }
  return std::string(home) + "/" + fallback;
}

}  // namespace

Result<DriveHome> ResolveDriveHome(const std::string& home, const std::string& drive) {
  if (!home.empty()) {
    std::string abs = std::filesystem::absolute(home).lexically_normal().string();
    while (abs.size() > 1 && abs.back() == '/') abs.pop_back();
    return DriveHome{abs, abs, abs + "/cache"};
  }
  SFS_ASSIGN_OR_RETURN(std::string config, XdgDir("XDG_CONFIG_HOME", ".config"));
  SFS_ASSIGN_OR_RETURN(std::string data, XdgDir("XDG_DATA_HOME", ".local/share"));
  SFS_ASSIGN_OR_RETURN(std::string cache, XdgDir("XDG_CACHE_HOME", ".cache"));
  return DriveHome{config + "/shardfs/" + drive, data + "/shardfs/" + drive,
                   cache + "/shardfs/" + drive};
}

Status MakeDriveHome(const DriveHome& home) {
  for (const std::string& dir : {home.config_dir, home.data_dir, home.cache_dir}) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return PosixError("create " + dir, ec.value());
    if (::chmod(dir.c_str(), 0700) != 0) return PosixError("chmod " + dir, errno);
  }
  return Status::Ok();
}

}  // namespace shardfs::cli
