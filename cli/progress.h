// A one-line progress display on stderr for long transfers (put, get): bytes and files done,
// the speed, and the share of the total when it is known. Nothing is shown when stderr is
// not a terminal, so scripts and logs see no progress noise.
//
// Thread safety: not thread-safe; one thread updates a Progress.

#ifndef SHARDFS_CLI_PROGRESS_H_
#define SHARDFS_CLI_PROGRESS_H_

#include <chrono>
#include <cstdint>
#include <string>

namespace shardfs::cli {

class Progress {
 public:
  // `verb` names the work ("stored", "got"); `total_bytes` 0 if not known.
  Progress(std::string verb, uint64_t total_bytes);
  // Clears the line if one was drawn.
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Adds finished work and redraws (at most 10 times a second).
  void Add(uint64_t bytes, uint64_t files);

 private:
  void Draw();

  const std::string verb_;
  const uint64_t total_;
  const bool shown_;
  uint64_t bytes_ = 0;
  uint64_t files_ = 0;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point last_draw_{};
};

}  // namespace shardfs::cli

#endif  // SHARDFS_CLI_PROGRESS_H_
