// shardfs: the one binary; its subcommands are set up in cli/commands.cc. Conventions: usage
// errors exit 2, runtime errors exit 1 with a message on stderr, --help and --version exit 0.

#include <cstdio>

#include <CLI/CLI.hpp>
#include <malloc.h>

#include "base/logging.h"
#include "cli/commands.h"

namespace {

int Main(int argc, char** argv) {
  CLI::App app;
  auto run = shardfs::cli::AddCommands(app);
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
  // Commands print their results on stdout (some as JSON): the engine's log goes to stderr,
  // warnings and errors only. `node` and `mount` set up their own logs.
  (void)shardfs::log::Init(shardfs::log::Options{shardfs::log::Level::kWarn, ""});
  int code = run();
  if (code >= 0) return code;
  std::fputs(app.help().c_str(), stdout);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Buffers of 8 MiB and more (packs, a file's writes joined for the chunker) are mapped, and
  // go back to the system when freed. Left to malloc's sliding threshold they come from the
  // arena of whichever thread asked, and stay there: a daemon whose threads take turns with
  // them grows by a buffer per thread (the mount daemon's peak RSS over five 1 GiB writes:
  // about 250 MiB, 118 MiB with this). Smaller, hot buffers are pooled where they are used.
  mallopt(M_MMAP_THRESHOLD, 8 << 20);
  try {
    return Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "shardfs: %s\n", e.what());
    return 1;
  }
}
