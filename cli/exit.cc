#include "cli/exit.h"

#include <cstdio>
#include <string>

namespace shardfs::cli {

int Failure(std::string_view command, std::string_view what, const Status& status) {
  std::fprintf(stderr, "shardfs %.*s: %.*s: %s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(what.size()), what.data(), status.ToString().c_str());
  return kExitFailure;
}

int UsageError(std::string_view command, std::string_view message) {
  std::fprintf(stderr, "shardfs %.*s: %.*s\n", static_cast<int>(command.size()), command.data(),
               static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

}  // namespace shardfs::cli
