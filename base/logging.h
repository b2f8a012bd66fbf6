// Logging for every part of shardfs: leveled, timestamped lines to stderr or a file, backed
// by spdlog (its one home). Call Init once from main(); before that, lines go to stderr at
// level info.
//
// Thread safety: all functions may be called from any thread.

#ifndef SHARDFS_BASE_LOGGING_H_
#define SHARDFS_BASE_LOGGING_H_

#include <string>
#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

#include "base/status.h"

namespace shardfs::log {

enum class Level { kDebug, kInfo, kWarn, kError, kOff };

struct Options {
  // Lines below this level are dropped.
  Level level = Level::kInfo;
  // Empty: stderr. Otherwise a file, appended to (created 0600 if missing).
  std::string file;
};

// Replaces the process-wide logger. InvalidArgument/IOError if the file cannot be opened; the
// previous logger stays in place then.
Status Init(const Options& options);

// Writes out the lines still buffered (before _exit, which skips destructors).
void Flush();

// Parses "debug", "info", "warn", "error" or "off".
Result<Level> ParseLevel(std::string_view name);

template <typename... Args>
void Debug(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  spdlog::debug(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void Info(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  spdlog::info(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void Warn(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  spdlog::warn(fmt, std::forward<Args>(args)...);
}
template <typename... Args>
void Error(spdlog::format_string_t<Args...> fmt, Args&&... args) {
  spdlog::error(fmt, std::forward<Args>(args)...);
}

}  // namespace shardfs::log

#endif  // SHARDFS_BASE_LOGGING_H_
