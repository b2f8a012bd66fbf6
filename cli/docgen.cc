// shardfs-docgen: writes the man page and the bash completion of shardfs from the command
// definitions the binary parses with (cli/commands.h). Run by the build, not installed.
//
//   shardfs-docgen man TEMPLATE DATE OUT   the man page: TEMPLATE with its placeholders filled
//   shardfs-docgen bash OUT                the bash completion script

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>

#include "base/version.h"
#include "cli/command_docs.h"
#include "cli/commands.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "shardfs-docgen: %s\n", message.c_str());
  return 1;
}

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"shardfs: a decentralized, end-to-end encrypted cloud drive for Linux."};
  (void)shardfs::cli::AddCommands(app);
  std::string what = argc > 1 ? argv[1] : "";
  if (what == "man" && argc == 5) {
    std::ifstream in(argv[2], std::ios::binary);
    if (!in) return Fail(std::string("cannot read ") + argv[2]);
    std::stringstream tmpl;
    tmpl << in.rdbuf();
    auto page = shardfs::cli::RenderManPage(app, tmpl.str(), shardfs::kVersion, argv[3]);
    if (!page.ok()) return Fail(page.status().ToString());
    if (!WriteFile(argv[4], page.value())) return Fail(std::string("cannot write ") + argv[4]);
    return 0;
  }
  if (what == "bash" && argc == 3) {
    if (!WriteFile(argv[2], shardfs::cli::RenderBashCompletion(app))) {
      return Fail(std::string("cannot write ") + argv[2]);
    }
    return 0;
  }
  std::fputs("usage: shardfs-docgen man TEMPLATE DATE OUT | bash OUT\n", stderr);
  return 2;
}
