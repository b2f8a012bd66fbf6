// How every shardfs command ends: 0 when done, 1 for a failure at run time, 2 for a usage
// error (nothing was changed), each failure with one line on stderr naming the command.

#ifndef SHARDFS_CLI_EXIT_H_
#define SHARDFS_CLI_EXIT_H_

#include <string_view>

#include "base/status.h"

namespace shardfs::cli {

inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// Prints "shardfs COMMAND: WHAT: STATUS" and returns kExitFailure.
int Failure(std::string_view command, std::string_view what, const Status& status);
// Prints "shardfs COMMAND: MESSAGE" and returns kExitUsage.
int UsageError(std::string_view command, std::string_view message);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_EXIT_H_
