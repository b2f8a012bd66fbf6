// shardfs: the one binary. Subcommands (init, put, get, mount, node, ...) arrive with the
// issues that build them; this is the entry point and its conventions: usage errors exit 2,
// --help and --version exit 0.

#include <cstdio>

#include <CLI/CLI.hpp>

#include "base/version.h"

namespace {

int Main(int argc, char** argv) {
  CLI::App app{"shardfs: a decentralized, end-to-end encrypted cloud drive for Linux."};
  app.name("shardfs");
  app.set_version_flag("--version", std::string("shardfs ") + shardfs::kVersion);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    return 2;
  }
  std::fputs(app.help().c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardfs: %s\n", e.what());
    return 1;
  }
}
