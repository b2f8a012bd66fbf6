// The local write-back area (DESIGN.md section 3, step 1): writes to a file land here, on the
// local disk, and never wait for the network; the uploader later stores them and commits them
// to the catalog, and only then are they dropped here (docs/architecture.md, "Staging").
//
// A staged file is a stack of layers over what the catalog stores. The area is a log: every
// change to any layer (its start, each write with its bytes, a truncation, an mtime) is one
// checksummed record appended to the current segment file of the folder, which is shared by
// all layers; a new segment starts once the current one passes segment_bytes. In memory each
// layer keeps where each byte it wrote is (segment and offset; a later write over the same
// bytes shadows the earlier one), so reads and uploads fetch the bytes from the segments. A
// layer survives the process: after kill -9 the next Open replays the segments (a record cut
// short by the crash is ignored) and rebuilds every layer (docs/format.md, "Staging segment").
// Each layer has a row in the catalog's upload queue from its first record to the commit that
// stores it; a layer without a row was committed or dropped, and its records are ignored. A
// segment is removed once no layer that is still staged has records in it (and it is not the
// one being appended to), so the folder holds a handful of files and the area a handful of
// descriptors, however many files are staged.
//
// The newest layer of a file is open (it takes writes) until it is frozen (on flush, fsync,
// sync, or when the file goes quiet, and by the write that takes it past freeze_bytes: then
// the file's next write starts a new layer on top, so a big file kept open while it is written
// is uploaded in parts as it grows; so does every layer not yet uploading when its segment is
// closed, so a layer that stays open long holds no more than two segments); frozen layers wait
// in the queue; the uploader takes the oldest layer of a file, and only one at a time per
// file, so layers commit in order. A layer records the smallest size the file had while it
// was open: bytes below it come from the layers under it, bytes above it that it did not write
// are a hole. So a truncate while an older layer uploads is exact.
//
// The area may have a limit on the bytes appended for layers not yet committed (overwrites
// included: that is the disk they take): a write that would take them past it is not
// accepted, and changes nothing (the drive then waits for the uploader to make room, or fails).
//
// Thread safety: all methods may be called from many threads. One mutex guards the layer
// tables and the segments, and is held for each append (a write's bytes included, with its
// check against the limit) and for reads of staged bytes; uploads read the segments through
// their own mappings, outside it (the bytes of a layer the uploader holds do not change).

#ifndef SHARDFS_BACKEND_STAGING_H_
#define SHARDFS_BACKEND_STAGING_H_

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "backend/catalog.h"
#include "base/file.h"
#include "base/thread_annotations.h"

namespace shardfs::backend {

// File bytes [offset, offset + length) of a staged layer, and where they are: in segment file
// `segment` (Staging::SegmentPath) from `segment_offset` on.
struct StagedPiece {
  uint64_t offset = 0;
  uint64_t length = 0;
  uint64_t segment = 0;
  uint64_t segment_offset = 0;
  uint64_t end() const { return offset + length; }
  friend bool operator==(const StagedPiece&, const StagedPiece&) = default;
};

// What a layer wrote: disjoint pieces in file order. A piece put over others shadows the
// bytes it covers (the others are cut around it).
class PieceMap {
 public:
  void Put(const StagedPiece& piece);
  // Drops everything at or past `size`.
  void CutFrom(uint64_t size);
  bool empty() const { return pieces_.empty(); }
  // The file bytes the pieces cover (kept as they change: no walk).
  uint64_t bytes() const { return bytes_; }
  std::vector<StagedPiece> pieces() const;
  // The pieces that overlap [offset, offset + length), clipped to it, in order.
  std::vector<StagedPiece> Overlap(uint64_t offset, uint64_t length) const;

 private:
  struct Place {
    uint64_t end = 0;
    uint64_t segment = 0;
    uint64_t segment_offset = 0;
  };
  std::map<uint64_t, Place> pieces_;  // file offset -> the rest of the piece
  uint64_t bytes_ = 0;
};

// A frozen layer handed to the uploader.
struct UploadJob {
  uint64_t seq = 0;
  Ino ino = 0;
  // The bytes written, each to store, in file order (adjacent pieces may continue each other
  // in the file, each from its own place).
  std::vector<StagedPiece> pieces;
  uint64_t min_size = 0;  // the file was cut to this (cut_to of the commit)
  uint64_t size = 0;      // the file's size after the layer
  std::optional<int64_t> mtime_ns;
  uint64_t bytes = 0;  // sum of the pieces' lengths
};

struct StagingStats {
  size_t files = 0;           // files with staged layers
  size_t layers = 0;          // layers not yet committed
  size_t queued = 0;          // frozen layers waiting for the uploader
  size_t uploading = 0;       // layers the uploader holds
  uint64_t bytes = 0;         // bytes appended for layers not yet committed (overwrites too)
  uint64_t queued_bytes = 0;  // bytes the frozen layers waiting for the uploader would store
  size_t segments = 0;        // segment files in the folder
};

struct StagingOptions {
  // The most bytes appended for layers not yet committed (StagingStats::bytes) that writes may
  // bring the area to: Write does not accept a write that would pass it. 0: no limit.
  uint64_t limit = 0;
  // An open layer with more than this many distinct bytes written is frozen by the write that
  // takes it past that, and takes no more writes: the file's next write starts a new layer on
  // top. 0: never (layers freeze only when asked to).
  uint64_t freeze_bytes = 0;
  // A segment file is closed, and the next change starts a new one, once it holds this many
  // bytes (a record is never split: one may pass it). At least 1.
  uint64_t segment_bytes = uint64_t{64} << 20;
};

// What Write did.
enum class StagedWrite {
  kDone,  // the bytes are staged
  // The bytes are staged, and open layers were frozen by it (the layer written passed
  // freeze_bytes, or a segment was closed): the uploader has new work.
  kFroze,
  kNoRoom,  // not accepted, nothing changed: the staged bytes plus these would pass the limit
};

class Staging {
 public:
  // Opens (creating) folder `dir` (mode 0700) and rebuilds the layers the catalog's upload
  // queue names, all frozen (and full: a later write starts a new layer), from the segments,
  // read in order: records of layers without a row (committed or dropped) are ignored, and a
  // segment is read up to its first bad record (a crash cut it short; logged). Layers of an
  // area of the previous format (one data and one log file per layer) are read too and
  // written into a new segment. Removes the segments (and old-format files) no rebuilt layer
  // needs, and rows whose layer is in no segment (with an error in the log: those bytes are
  // lost). Layers rebuilt count against the limit even if they pass it. New records go to a
  // new segment. IOError from the disk; NotSupported for a segment or layer of a newer format.
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

  // Writes `data` at `offset` of file `ino` (kDone, or kFroze if that froze open layers);
  // kNoRoom (nothing written) if the bytes appended for layers not yet committed plus
  // data.size() would pass the limit. The check and the write are one step under the lock, so
  // writers in many threads never take the area past the limit together; a write counts whole
  // even where it overwrites bytes staged already (they stay on disk until the layer goes).
  // IOError/NoSpace from the local disk (the write is then not accepted), or stored_size's
  // error.
  Result<StagedWrite> Write(Ino ino, const StoredSize& stored_size, uint64_t offset, ByteSpan data,
                            int64_t now_ns);
  // Sets the file's size (a truncate or an extension with a hole; neither counts against the
  // limit, and neither gives back bytes: those a truncate cuts stay on disk until the layer
  // goes).
  Status Truncate(Ino ino, const StoredSize& stored_size, uint64_t size, int64_t now_ns);
  // Sets the file's mtime as of now in the layer order (a later write sets it again).
  Status SetMtime(Ino ino, const StoredSize& stored_size, int64_t mtime_ns);

  // Reads bytes [offset, offset + out.size()) of a staged file as its layers give them, with
  // `stored` reading from the catalog's version the parts no layer covers. Returns false if
  // the file has no layers (nothing was read). IOError, or Corruption for a segment shorter
  // than its records.
  using StoredReader = std::function<Status(uint64_t offset, MutableByteSpan out)>;
  Result<bool> Read(Ino ino, uint64_t offset, MutableByteSpan out, const StoredReader& stored);

  // Freezes the open layer of `ino` (none: nothing to do). Returns the highest seq of the
  // file's layers (0 if none): what an fsync waits for.
  uint64_t Freeze(Ino ino);
  // Freezes every open layer; returns the highest seq staged (0 if none).
  uint64_t FreezeAll();
  // Freezes open layers that had no write for `idle` (the work is in the open layers only).
  void FreezeIdle(std::chrono::steady_clock::duration idle);
  // The file is gone: forgets its layers and removes their rows (and the segments no layer
  // needs any more). A layer the uploader holds is removed when it hands it back.
  Status Drop(Ino ino);

  // Up to `max_bytes` (at least one job if any is queued) of frozen layers, the oldest layer
  // of each file, in seq order. They are the caller's until Release: their pieces stay where
  // the jobs say, unchanged.
  std::vector<UploadJob> Take(uint64_t max_bytes);
  // Hands jobs back: committed ones are removed; the others wait again.
  void Release(const std::vector<UploadJob>& jobs, bool committed);
  // The path of segment file `segment` (the uploader maps it to read a job's pieces).
  std::string SegmentPath(uint64_t segment) const;

  // False if the file of an upload job was dropped while the uploader held it (its commit
  // must be skipped).
  bool Wanted(const UploadJob& job) const;
  // True if a layer with seq <= `seq` is still staged.
  bool Pending(uint64_t seq) const;
  bool PendingFor(Ino ino, uint64_t seq) const;
  // Counters kept as layers change: no walk.
  StagingStats Stats() const;
  // Makes what the area holds survive a power loss: fsyncs every segment that holds records
  // of a layer not yet committed (without holding the lock: writes go on, and what they add
  // after the call began may be left out), then the folder, for their names. The upload
  // queue's rows are the catalog's, durable with its commits (CatalogOptions::sync).
  // IOError (or the code of another errno) from the disk.
  Status SyncToDisk() const;
  // When the newest freeze happened (for the uploader's "writes went quiet").
  std::chrono::steady_clock::time_point last_freeze() const;

 private:
  struct Layer;
  struct File;
  struct Segment;
  struct OldLayer;
  // Where a record went: its segment and the offset of its first byte there.
  struct Spot {
    uint64_t segment = 0;
    uint64_t offset = 0;
  };
  Staging(std::string dir, Catalog* catalog, StagingOptions options);
  // The open layer of `ino`, made if needed (the file's first layer starts at stored_size()).
  Result<Layer*> OpenLayerLocked(Ino ino, const StoredSize& stored_size) REQUIRES(mu_);
  // Appends one record (`head`, then `payload`) to the segment being appended to, starting
  // one if there is none. On an error nothing was appended.
  Result<Spot> AppendLocked(ByteSpan head, ByteSpan payload) REQUIRES(mu_);
  // Appends a record of `layer` and notes that the layer has records in its segment.
  Result<Spot> AppendForLocked(Layer& layer, ByteSpan head, ByteSpan payload) REQUIRES(mu_);
  // Closes the segment being appended to if it has reached segment_bytes; then freezes every
  // layer the uploader does not hold, for good (full). Returns true if it froze an open one.
  bool RotateIfFullLocked() REQUIRES(mu_);
  // A layer's part in the counters of Stats (and in open_): taken out before a layer's state
  // changes, put back after.
  void UncountLocked(const Layer& layer) REQUIRES(mu_);
  void CountLocked(const Layer& layer) REQUIRES(mu_);
  void FreezeLocked(Layer& layer, bool full) REQUIRES(mu_);
  // Forgets layer `seq` of its file (not its row) and lets go of its segments.
  void RemoveLayerLocked(uint64_t seq) REQUIRES(mu_);
  // Removes a segment no layer needs (or, if it is being appended to, empties it).
  void ReleaseSegmentLocked(uint64_t segment) REQUIRES(mu_);
  // Notes that `layer` has records in `segment`.
  void NoteSegmentLocked(Layer& layer, uint64_t segment) REQUIRES(mu_);
  // Adds a layer to its file (in seq order) and to layers_; does not count it.
  void InsertLayerLocked(std::unique_ptr<Layer> layer) REQUIRES(mu_);
  Layer* FindLayerLocked(uint64_t seq) const REQUIRES(mu_);
  Status Recover();
  // Rebuilds (uncounted) the layers that have a row in `rows` and are not in `old` from the
  // records of segment `number`.
  Status ReplaySegmentLocked(uint64_t number, const std::map<uint64_t, Ino>& rows,
                             const std::map<uint64_t, OldLayer>& old) REQUIRES(mu_);
  // The previous format: layer `seq` of file `ino` from its data and log files; nullopt if
  // they are missing or not that layer's.
  std::string OldDataPath(uint64_t seq) const;
  std::string OldLogPath(uint64_t seq) const;
  Result<std::optional<OldLayer>> ReadOldLayer(uint64_t seq, Ino ino);
  // Writes an old layer's state as records of the segment being appended to, and adds it.
  Status ConvertOldLayerLocked(uint64_t seq, OldLayer& old) REQUIRES(mu_);

  const std::string dir_;
  Catalog* const catalog_;
  const StagingOptions options_;
  mutable Mutex mu_;
  std::map<Ino, std::unique_ptr<File>> files_ GUARDED_BY(mu_);
  std::map<uint64_t, Layer*> layers_ GUARDED_BY(mu_);  // every layer not yet committed, by seq
  std::set<Ino> open_ GUARDED_BY(mu_);                 // files whose newest layer is open
  std::map<uint64_t, std::unique_ptr<Segment>> segments_ GUARDED_BY(mu_);  // by number
  Segment* active_ GUARDED_BY(mu_) = nullptr;  // being appended to; null: the next starts one
  uint64_t next_segment_ GUARDED_BY(mu_) = 1;
  uint64_t next_seq_ GUARDED_BY(mu_) = 1;
  // Stats, kept as layers change.
  uint64_t bytes_ GUARDED_BY(mu_) = 0;  // appended for layers not yet committed
  size_t queued_ GUARDED_BY(mu_) = 0;
  uint64_t queued_bytes_ GUARDED_BY(mu_) = 0;
  size_t uploading_ GUARDED_BY(mu_) = 0;
  std::chrono::steady_clock::time_point last_freeze_ GUARDED_BY(mu_){};
};

}  // namespace shardfs::backend

#endif  // SHARDFS_BACKEND_STAGING_H_
