#include "base/logging.h"

#include <cerrno>
#include <memory>

#include <fcntl.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

namespace shardfs::log {

namespace {
spdlog::level::level_enum ToSpdlog(Level level) {
  switch (level) {
    case Level::kDebug:
      return spdlog::level::debug;
    case Level::kInfo:
      return spdlog::level::info;
    case Level::kWarn:
      return spdlog::level::warn;
    case Level::kError:
      return spdlog::level::err;
    case Level::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::info;
}
}  // namespace

Status Init(const Options& options) {
  std::shared_ptr<spdlog::logger> logger;
  if (options.file.empty()) {
    logger = std::make_shared<spdlog::logger>("shardfs",
                                              std::make_shared<spdlog::sinks::stderr_sink_mt>());
  } else {
    // Create the file 0600 ourselves: a log may name files of the drive.
    int fd = ::open(options.file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0) return PosixError("open log file " + options.file, errno);
    ::close(fd);
    try {
      logger = std::make_shared<spdlog::logger>(
          "shardfs", std::make_shared<spdlog::sinks::basic_file_sink_mt>(options.file));
    } catch (const spdlog::spdlog_ex& e) {
      return Status::IOError(std::string("open log file: ") + e.what());
    }
  }
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%L%$ %v");
  logger->set_level(ToSpdlog(options.level));
  // A log file is read while the process runs (a daemon's): each line of info and above is
  // written out at once.
  logger->flush_on(options.file.empty() ? spdlog::level::warn : spdlog::level::info);
  spdlog::set_default_logger(std::move(logger));
  return Status::Ok();
}

void Flush() { spdlog::default_logger()->flush(); }

Result<Level> ParseLevel(std::string_view name) {
  if (name == "debug") return Level::kDebug;
  if (name == "info") return Level::kInfo;
  if (name == "warn") return Level::kWarn;
  if (name == "error") return Level::kError;
  if (name == "off") return Level::kOff;
  return Status::InvalidArgument("unknown log level '" + std::string(name) +
                                 "' (want debug, info, warn, error or off)");
}

}  // namespace shardfs::log
