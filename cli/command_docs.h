// The man page's command sections and the bash completion script, made from the CLI::App that
// the binary parses with (cli/commands.h), so neither can disagree with the binary. The build
// runs them through shardfs-docgen (cli/docgen.cc); packaging/ installs what it writes.
//
// Thread safety: pure functions of their arguments.

#ifndef SHARDFS_CLI_COMMAND_DOCS_H_
#define SHARDFS_CLI_COMMAND_DOCS_H_

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

#include "base/status.h"

namespace shardfs::cli {

// `tmpl` (roff) with @VERSION@ and @DATE@ replaced, the line "@COMMANDS@" replaced by a
// subsection per subcommand (nested ones too: "shardfs devices revoke"), each with its synopsis,
// description, arguments and options, and the line "@COMMON_OPTIONS@" by the options that three
// or more subcommands share with the same description (each subcommand names those it takes
// instead of repeating them). InvalidArgument if either placeholder line is missing.
Result<std::string> RenderManPage(const CLI::App& app, std::string_view tmpl,
                                  std::string_view version, std::string_view date);

// A bash script that completes `app.get_name()`'s subcommands, their options, the choices of
// arguments and options that have them (CLI::IsMember), and local paths for the other
// arguments and for options whose values are paths (--config, --home, --data, --*-file,
// --*-dir).
std::string RenderBashCompletion(const CLI::App& app);

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_COMMAND_DOCS_H_
