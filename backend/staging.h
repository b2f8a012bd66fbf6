// The local write-back area (DESIGN.md section 3, step 1): writes to a file land here, on the
// local disk, and never wait for the network; the uploader later stores them and commits them
// to the catalog, and only then are they dropped here (docs/architecture.md, "Staging").
//
// A staged file is a stack of layers over what the catalog stores. A layer is a sparse data
// file holding the bytes written while it was open, at their file offsets, and a log of what
// happened to it (writes, truncations, mtime), so a layer survives the process: after kill -9
// the next Open rebuilds every layer from its log (docs/format.md, "Staging layer"). Each
// layer has a row in the catalog's upload queue from its first byte to the commit that stores
// it; a layer without a row was committed, and its files are removed at Open.
//
// The newest layer of a file is open (it takes writes) until it is frozen (on flush, fsync,
// sync, or when the file goes quiet, and by the write that takes it past freeze_bytes: then
// the file's next write starts a new layer on top, so a big file kept open while it is written
// is uploaded in parts as it grows); frozen layers wait in the queue; the uploader takes the
// oldest layer of a file, and only one at a time per file, so layers commit in order. A layer
// records the smallest size the file had while it was open: bytes below it come from the
// layers under it, bytes above it that it did not write are a hole. So a truncate while an
// older layer uploads is exact.
//
// The area may have a limit on the bytes written to layers not yet committed: a write that
// would take them past it is not accepted, and changes nothing (the drive then waits for the
// uploader to make room, or fails).
//
// Thread safety: all methods may be called from many threads. One mutex guards the layer
// tables (and a write, with its check against the limit); file I/O on a layer's data file
// happens outside it for reads and uploads of frozen layers (which no longer change).

#ifndef SHARDFS_BACKEND_STAGING_H_
#define SHARDFS_BACKEND_STAGING_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "backend/catalog.h"
#include "base/file.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

// File bytes [offset, offset + length).
struct ByteRange {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t end() const { return offset + length; }
  friend bool operator==(const ByteRange&, const ByteRange&) = default;
};

// A set of disjoint, non-adjacent byte ranges in order.
class RangeSet {
 public:
  void Add(uint64_t offset, uint64_t length);
  // Drops everything at or past `size`.
  void CutFrom(uint64_t size);
  bool empty() const { return ranges_.empty(); }
  // The bytes the ranges cover (kept as they change: no walk).
  uint64_t bytes() const { return bytes_; }
  std::vector<ByteRange> ranges() const;
  // The ranges that overlap [offset, offset + length), clipped to it, in order.
  std::vector<ByteRange> Overlap(uint64_t offset, uint64_t length) const;

 private:
  std::map<uint64_t, uint64_t> ranges_;  // offset -> end
  uint64_t bytes_ = 0;
};

// A frozen layer handed to the uploader.
struct UploadJob {
  uint64_t seq = 0;
  Ino ino = 0;
  std::vector<ByteRange> ranges;  // bytes written, each to store
  uint64_t min_size = 0;          // the file was cut to this (cut_to of the commit)
  uint64_t size = 0;              // the file's size after the layer
  std::optional<int64_t> mtime_ns;
  std::string data_path;  // the layer's data file (ranges at their offsets)
  uint64_t bytes = 0;     // sum of the ranges' lengths
};

struct StagingStats {
  size_t files = 0;           // files with staged layers
  size_t layers = 0;          // layers not yet committed
  size_t queued = 0;          // frozen layers waiting for the uploader
  size_t uploading = 0;       // layers the uploader holds
  uint64_t bytes = 0;         // bytes written to layers not yet committed
  uint64_t queued_bytes = 0;  // of which in frozen layers waiting for the uploader
};

struct StagingOptions {
  // The most bytes written to layers not yet committed (StagingStats::bytes) that writes may
  // bring the area to: Write does not accept a write that would pass it. 0: no limit.
  uint64_t limit = 0;
  // An open layer with more than this many bytes written is frozen by the write that takes it
  // past that, and takes no more writes: the file's next write starts a new layer on top.
  // 0: never (layers freeze only when asked to).
  uint64_t freeze_bytes = 0;
};

// What Write did.
enum class StagedWrite {
  kDone,    // the bytes are staged
  kFroze,   // the bytes are staged, and the layer passed freeze_bytes: it is frozen now
  kNoRoom,  // not accepted, nothing changed: the staged bytes plus these would pass the limit
};

class Staging {
 public:
  // Opens (creating) folder `dir` (mode 0700) and rebuilds the layers the catalog's upload
  // queue names, all frozen; removes files of layers that have no row (committed) and rows
  // whose files are gone (with an error in the log: those bytes are lost). Layers rebuilt count
  // against the limit even if they pass it. IOError from the disk; Corruption for a layer log
  // that is not one.
  static Result<std::unique_ptr<Staging>> Open(const std::string& dir, Catalog* catalog,
                                               StagingOptions options = {});
  ~Staging();

  // What the staged layers say of a file's attributes, if it has any.
  struct Overlay {
    uint64_t size = 0;
    std::optional<int64_t> mtime_ns;
  };
  std::optional<Overlay> Find(Ino ino) const;

  // The size the catalog stores for a file (and its error if it is not a file there). Asked
  // only when the file gets its first layer, under the staging lock: it must not call back
  // into the staging area.
  using StoredSize = std::function<Result<uint64_t>()>;

  // Writes `data` at `offset` of file `ino` (kDone, or kFroze if that froze the file's open
  // layer for passing freeze_bytes); kNoRoom (nothing written) if the bytes written to layers
  // not yet committed plus data.size() would pass the limit. The check and the write are one
  // step under the lock, so writers in many threads never take the area past the limit
  // together; a write counts whole even where it overwrites bytes staged already (so one may
  // be refused within data.size() of the limit). IOError/NoSpace from the local disk (the
  // write is then not accepted), or stored_size's error.
  Result<StagedWrite> Write(Ino ino, const StoredSize& stored_size, uint64_t offset, ByteSpan data,
                            int64_t now_ns);
  // Sets the file's size (a truncate or an extension with a hole; neither counts against the
  // limit, and a truncate gives back the staged bytes it cuts).
  Status Truncate(Ino ino, const StoredSize& stored_size, uint64_t size, int64_t now_ns);
  // Sets the file's mtime as of now in the layer order (a later write sets it again).
  Status SetMtime(Ino ino, const StoredSize& stored_size, int64_t mtime_ns);

  // Reads bytes [offset, offset + out.size()) of a staged file as its layers give them, with
  // `stored` reading from the catalog's version the parts no layer covers. Returns false if
  // the file has no layers (nothing was read).
  using StoredReader = std::function<Status(uint64_t offset, MutableByteSpan out)>;
  Result<bool> Read(Ino ino, uint64_t offset, MutableByteSpan out, const StoredReader& stored);

  // Freezes the open layer of `ino` (none: nothing to do). Returns the highest seq of the
  // file's layers (0 if none): what an fsync waits for.
  uint64_t Freeze(Ino ino);
  // Freezes every open layer; returns the highest seq staged (0 if none).
  uint64_t FreezeAll();
  // Freezes open layers that had no write for `idle`.
  void FreezeIdle(std::chrono::steady_clock::duration idle);
  // The file is gone: forgets its layers and removes their files and rows. A layer the
  // uploader holds is removed when it hands it back.
  Status Drop(Ino ino);

  // Up to `max_bytes` (at least one job if any is queued) of frozen layers, the oldest layer
  // of each file, in seq order. They are the caller's until Release.
  std::vector<UploadJob> Take(uint64_t max_bytes);
  // Hands jobs back: committed ones are removed (files and layer); the others wait again.
  void Release(const std::vector<UploadJob>& jobs, bool committed);

  // False if the file of an upload job was dropped while the uploader held it (its commit
  // must be skipped).
  bool Wanted(const UploadJob& job) const;
  // True if a layer with seq <= `seq` is still staged.
  bool Pending(uint64_t seq) const;
  bool PendingFor(Ino ino, uint64_t seq) const;
  StagingStats Stats() const;
  // Makes what the area holds survive a power loss: fsyncs the data and log files of every
  // layer not yet committed (one at a time, without holding the lock: writes go on, and what
  // they add after the call began may be left out), then the folder, for their names. The
  // upload queue's rows are the catalog's, durable with its commits (CatalogOptions::sync).
  // IOError (or the code of another errno) from the disk.
  Status SyncToDisk() const;
  // When the newest freeze happened (for the uploader's "writes went quiet").
  std::chrono::steady_clock::time_point last_freeze() const;

 private:
  struct Layer;
  struct File;
  Staging(std::string dir, Catalog* catalog, StagingOptions options);
  std::string DataPath(uint64_t seq) const;
  std::string LogPath(uint64_t seq) const;
  // The open layer of `ino`, made if needed (the file's first layer starts at stored_size()).
  Result<Layer*> OpenLayerLocked(Ino ino, const StoredSize& stored_size) REQUIRES(mu_);
  Status AppendLocked(Layer& layer, ByteSpan record) REQUIRES(mu_);
  // Layer `seq` of file `ino`, or null if it is gone (committed or dropped).
  const Layer* FindLayerLocked(Ino ino, uint64_t seq) const REQUIRES(mu_);
  void RemoveFilesLocked(uint64_t seq) REQUIRES(mu_);
  Status Recover();

  const std::string dir_;
  Catalog* const catalog_;
  const StagingOptions options_;
  mutable Mutex mu_;
  std::map<Ino, std::unique_ptr<File>> files_ GUARDED_BY(mu_);
  uint64_t bytes_ GUARDED_BY(mu_) = 0;  // written to layers not yet committed
  uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  std::chrono::steady_clock::time_point last_freeze_ GUARDED_BY(mu_){};
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_STAGING_H_
