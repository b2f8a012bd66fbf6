// shardfs-docgen: writes the man page and the bash completion of shardfs from the command
// definitions the binary parses with (cli/commands.h). Run by the build, not installed.
//
//   shardfs-docgen man TEMPLATE DATE OUT   the man page: TEMPLATE with its placeholders filled
//   shardfs-docgen bash OUT                the bash completion script

#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "base/bytes.h"
#include "base/file.h"
#include "base/version.h"
#include "cli/command_docs.h"
#include "cli/commands.h"

namespace {

constexpr size_t kMaxTemplate = 1 << 20;

int Fail(const std::string& message) {
  std::fprintf(stderr, "shardfs-docgen: %s\n", message.c_str());
  return 1;
}

int Write(const std::string& path, const std::string& text) {
  shardfs::Status s = shardfs::WriteFileAtomic(path, shardfs::AsBytes(text), 0644);
  return s.ok() ? 0 : Fail(s.ToString());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app;
  (void)shardfs::cli::AddCommands(app);
  std::string what = argc > 1 ? argv[1] : "";
  if (what == "man" && argc == 5) {
    auto tmpl = shardfs::ReadFile(argv[2], kMaxTemplate);
    if (!tmpl.ok()) return Fail(tmpl.status().ToString());
    auto page = shardfs::cli::RenderManPage(app, std::string(tmpl->begin(), tmpl->end()),
                                            shardfs::kVersion, argv[3]);
    if (!page.ok()) return Fail(page.status().ToString());
    return Write(argv[4], *page);
  }
  if (what == "bash" && argc == 3) return Write(argv[2], shardfs::cli::RenderBashCompletion(app));
  std::fputs("usage: shardfs-docgen man TEMPLATE DATE OUT | bash OUT\n", stderr);
  return 2;
}
