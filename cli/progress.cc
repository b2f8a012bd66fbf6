#include "cli/progress.h"

#include <algorithm>
#include <cstdio>

#include <unistd.h>

#include "base/units.h"

namespace shardfs::cli {

Progress::Progress(std::string verb, uint64_t total_bytes)
    : verb_(std::move(verb)),
      total_(total_bytes),
      shown_(::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()) {}

Progress::~Progress() {
  if (drawn_) std::fprintf(stderr, "\r\033[K");
}

void Progress::Add(uint64_t bytes, uint64_t files) {
  bytes_ += bytes;
  files_ += files;
  if (!shown_) return;
  const auto now = std::chrono::steady_clock::now();
  if (drawn_ && now - last_draw_ < std::chrono::milliseconds(100)) return;
  last_draw_ = now;
  Draw();
}

void Progress::Draw() {
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  const auto rate = seconds > 0 ? static_cast<uint64_t>(static_cast<double>(bytes_) / seconds) : 0;
  std::string line = verb_ + " " + FormatByteSize(bytes_);
  if (total_ > 0) {
    const int percent = std::min(
        100, static_cast<int>(100.0 * static_cast<double>(bytes_) / static_cast<double>(total_)));
    const int filled = percent / 5;
    line = "[" + std::string(static_cast<size_t>(filled), '#') +
           std::string(static_cast<size_t>(20 - filled), '.') + "] " + std::to_string(percent) +
           "% " + line + " of " + FormatByteSize(total_);
  }
  line += ", " + std::to_string(files_) + " file(s), " + FormatByteSize(rate) + "/s";
  std::fprintf(stderr, "\r\033[K%s", line.c_str());
  std::fflush(stderr);
  drawn_ = true;
}

}  // namespace shardfs::cli
