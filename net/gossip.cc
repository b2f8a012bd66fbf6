#include "net/gossip.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <numeric>

#include "base/splitmix64.h"
#include "net/address.h"

namespace shardfs::net {

namespace {

using Clock = Gossip::Clock;

constexpr uint8_t kMagic[3] = {'S', 'F', 'G'};
// Packet types; on the wire: do not renumber.
constexpr uint8_t kPing = 1;
constexpr uint8_t kAck = 2;
constexpr uint8_t kPingReq = 3;
constexpr uint8_t kGossip = 4;
// Update tags; on the wire: do not renumber.
constexpr uint8_t kUpdateRecord = 1;
constexpr uint8_t kUpdateSuspect = 2;
constexpr uint8_t kUpdateDead = 3;
// Ack flags.
constexpr uint8_t kAckIndirect = 1;
// The most broadcasts queued; beyond it the most sent are dropped (a flood of joins).
constexpr size_t kMaxBroadcasts = 4096;

Bytes Notice(uint8_t tag, const NodeId& id, uint64_t incarnation) {
  Bytes b;
  ByteWriter w(&b);
  w.U8(tag);
  w.Raw(id.span());
  w.U64(incarnation);
  return b;
}

Bytes RecordUpdate(const MemberRecord& rec) {
  Bytes b;
  b.reserve(1 + rec.encoded.size());
  b.push_back(kUpdateRecord);
  b.insert(b.end(), rec.encoded.begin(), rec.encoded.end());
  return b;
}

double Millis(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// One update of a packet, framed but not yet checked.
struct ParsedUpdate {
  uint8_t tag = 0;
  ByteSpan record;  // kUpdateRecord
  NodeId id;        // notices
  uint64_t incarnation = 0;
};

struct ParsedPacket {
  uint8_t type = 0;
  NodeId sender;
  uint64_t seq = 0;
  NodeId target;                   // ping, ping-req
  std::string target_address;      // ping-req
  uint8_t ack_flags = 0;           // ack
  backend::Coordinate coordinate;  // ack
  std::vector<ParsedUpdate> updates;
};

// Parses the whole packet before anything is applied, so a malformed one changes nothing.
bool Parse(ByteSpan in, ParsedPacket* p) {
  ByteReader r(in);
  uint8_t magic[3], version = 0;
  if (!r.Raw(magic) || std::memcmp(magic, kMagic, 3) != 0) return false;
  if (!r.U8(&version) || version != kGossipVersion) return false;
  if (!r.U8(&p->type) || !r.Raw(MutableByteSpan(p->sender.mutable_data(), NodeId::kSize)) ||
      !r.U64(&p->seq)) {
    return false;
  }
  switch (p->type) {
    case kPing:
      if (!r.Raw(MutableByteSpan(p->target.mutable_data(), NodeId::kSize))) return false;
      break;
    case kAck:
      if (!r.U8(&p->ack_flags) || !backend::GetCoordinate(r, &p->coordinate)) return false;
      break;
    case kGossip:
      break;
    case kPingReq: {
      uint8_t len = 0;
      ByteSpan addr;
      if (!r.Raw(MutableByteSpan(p->target.mutable_data(), NodeId::kSize)) || !r.U8(&len) ||
          !r.View(len, &addr)) {
        return false;
      }
      p->target_address.assign(reinterpret_cast<const char*>(addr.data()), addr.size());
      if (!ParseHostPort(p->target_address).ok()) return false;
      break;
    }
    default:
      return false;
  }
  uint8_t count = 0;
  if (!r.U8(&count)) return false;
  for (int i = 0; i < count; ++i) {
    ParsedUpdate u;
    if (!r.U8(&u.tag)) return false;
    if (u.tag == kUpdateRecord) {
      size_t at = r.position();
      auto len = MemberRecordLength(in.subspan(at));
      if (!len.ok() || !r.View(*len, &u.record)) return false;
    } else if (u.tag == kUpdateSuspect || u.tag == kUpdateDead) {
      if (!r.Raw(MutableByteSpan(u.id.mutable_data(), NodeId::kSize)) || !r.U64(&u.incarnation)) {
        return false;
      }
    } else {
      return false;
    }
    p->updates.push_back(u);
  }
  return r.AtEnd();
}

bool Live(MemberState s) { return s == MemberState::kAlive || s == MemberState::kSuspect; }

double CoordinateMove(const backend::Coordinate& a, const backend::Coordinate& b) {
  double sum = 0;
  for (int i = 0; i < backend::kCoordinateDims; ++i)
    sum += (a.vec[i] - b.vec[i]) * (a.vec[i] - b.vec[i]);
  return std::sqrt(sum) + std::abs(a.height - b.height);
}

}  // namespace

Status ValidateGossipOptions(const GossipOptions& o) {
  using std::chrono::milliseconds;
  if (o.period < milliseconds(10) || o.period > milliseconds(60000)) {
    return Status::InvalidArgument("gossip period must be 10 ms to 60 s");
  }
  if (o.ping_timeout <= milliseconds(0) || o.ping_timeout >= o.period) {
    return Status::InvalidArgument("gossip ping timeout must be above 0 and below the period");
  }
  if (o.indirect_fanout < 0 || o.indirect_fanout > 16) {
    return Status::InvalidArgument("gossip indirect fan-out must be 0 to 16");
  }
  if (o.gossip_fanout < 0 || o.gossip_fanout > 16) {
    return Status::InvalidArgument("gossip fan-out must be 0 to 16");
  }
  if (o.gossip_interval <= milliseconds(0) || o.gossip_interval > o.period) {
    return Status::InvalidArgument("gossip interval must be above 0 and at most the period");
  }
  if (!(o.suspicion_mult >= 1 && o.suspicion_mult <= 100)) {
    return Status::InvalidArgument("gossip suspicion multiplier must be 1 to 100");
  }
  if (!(o.retransmit_mult >= 1 && o.retransmit_mult <= 100)) {
    return Status::InvalidArgument("gossip retransmit multiplier must be 1 to 100");
  }
  if (o.max_packet_bytes < 512 || o.max_packet_bytes > 65000) {
    return Status::InvalidArgument("gossip packet size must be 512 to 65000 bytes");
  }
  if (o.republish < milliseconds(0) || o.dead_retention < std::chrono::seconds(0)) {
    return Status::InvalidArgument("gossip intervals must not be negative");
  }
  return Status::Ok();
}

const char* MemberStateName(MemberState state) {
  switch (state) {
    case MemberState::kAlive:
      return "alive";
    case MemberState::kSuspect:
      return "suspect";
    case MemberState::kDead:
      return "dead";
    case MemberState::kLeft:
      return "left";
  }
  return "unknown";
}

std::optional<MemberState> ParseMemberState(std::string_view name) {
  for (MemberState s :
       {MemberState::kAlive, MemberState::kSuspect, MemberState::kDead, MemberState::kLeft}) {
    if (name == MemberStateName(s)) return s;
  }
  return std::nullopt;
}

Result<std::unique_ptr<Gossip>> Gossip::Create(crypto::SigningKey key, GossipSelf self,
                                               GossipOptions options, uint64_t incarnation,
                                               uint64_t seed, Clock::time_point now) {
  if (Status s = ValidateGossipOptions(options); !s.ok()) return s;
  std::unique_ptr<Gossip> g(new Gossip(std::move(key), std::move(self), options, seed, now));
  MemberRecord fields;
  fields.incarnation = incarnation;
  fields.address = g->self_.address;
  fields.capacity = g->self_.capacity;
  fields.free = g->self_.free;
  fields.coordinate = g->vivaldi_.coordinate();
  auto rec = SignMemberRecord(g->key_, std::move(fields));
  if (!rec.ok()) return rec.status();
  g->own_ = std::make_shared<const MemberRecord>(std::move(*rec));
  return g;
}

Gossip::Gossip(crypto::SigningKey key, GossipSelf self, GossipOptions options, uint64_t seed,
               Clock::time_point now)
    : key_(std::move(key)),
      self_id_(crypto::NodeIdOf(key_.public_key())),
      self_(std::move(self)),
      options_(options),
      rng_(seed),
      vivaldi_(options.vivaldi, seed ^ 0x5bd1e995),
      last_republish_(now),
      next_probe_(now),
      next_reap_(now + ReapInterval()),
      next_gossip_(now),
      last_tick_(now) {}

Clock::duration Gossip::ReapInterval() const {
  return std::min<Clock::duration>(std::chrono::minutes(1), options_.dead_retention);
}

uint64_t Gossip::Random() { return SplitMix64Next(&rng_); }

Gossip::Entry* Gossip::FindEntry(const NodeId& id) {
  auto it = std::lower_bound(members_.begin(), members_.end(), id,
                             [](const Entry& e, const NodeId& k) { return e.record->id < k; });
  return it != members_.end() && it->record->id == id ? &*it : nullptr;
}

const Gossip::Entry* Gossip::FindEntry(const NodeId& id) const {
  return const_cast<Gossip*>(this)->FindEntry(id);
}

std::chrono::milliseconds Gossip::SuspicionTimeout() const {
  double n = static_cast<double>(live_);
  double periods = options_.suspicion_mult * std::max(1.0, std::log10(n));
  return std::chrono::milliseconds(
      static_cast<int64_t>(periods * static_cast<double>(options_.period.count())));
}

size_t Gossip::RetransmitLimit() const {
  double n = static_cast<double>(live_);
  return static_cast<size_t>(std::ceil(options_.retransmit_mult * std::ceil(std::log10(n + 1))));
}

void Gossip::SetState(Entry& e, MemberState state, uint64_t incarnation, Clock::time_point now) {
  bool was_live = Live(e.state), live = Live(state);
  if (was_live && !live) --live_;
  if (!was_live && live) ++live_;
  if (state != e.state) e.since = now;
  e.state = state;
  e.incarnation = incarnation;
  if (state == MemberState::kSuspect) {
    suspicion_deadlines_[e.record->id] = now + SuspicionTimeout();
  } else {
    suspicion_deadlines_.erase(e.record->id);
  }
  if (!live) rtts_.Forget(e.record->id);
}

void Gossip::Queue(const NodeId& about, Bytes update) {
  // A newer update about a node replaces any older one still queued.
  auto it = std::find_if(broadcasts_.begin(), broadcasts_.end(),
                         [&](const Broadcast& b) { return b.about == about; });
  if (it != broadcasts_.end()) {
    it->update = std::move(update);
    it->transmits = 0;
    return;
  }
  if (broadcasts_.size() >= kMaxBroadcasts) {
    auto most = std::max_element(
        broadcasts_.begin(), broadcasts_.end(),
        [](const Broadcast& a, const Broadcast& b) { return a.transmits < b.transmits; });
    broadcasts_.erase(most);
  }
  broadcasts_.push_back({about, std::move(update), 0});
}

bool Gossip::IsNews(const Entry& e, MemberKind kind, uint64_t incarnation) {
  // A left record also wins over an alive (or suspect, dead) state of its own incarnation.
  return incarnation > e.incarnation ||
         (kind == MemberKind::kLeft && e.state != MemberState::kLeft &&
          incarnation >= e.incarnation);
}

bool Gossip::ApplyRecord(std::shared_ptr<const MemberRecord> rec, Clock::time_point now) {
  if (rec->id == self_id_) {
    // Someone passes on a record of ours newer than the one we hold (we restarted with an
    // older view of ourselves): sign one above it.
    if (rec->incarnation > own_->incarnation && !left_) {
      Republish(rec->incarnation, now);
      ++counters_.refutations;
    }
    return false;
  }
  MemberState state = rec->kind == MemberKind::kLeft ? MemberState::kLeft : MemberState::kAlive;
  Entry* e = FindEntry(rec->id);
  if (e == nullptr) {
    auto it = std::lower_bound(members_.begin(), members_.end(), rec->id,
                               [](const Entry& x, const NodeId& k) { return x.record->id < k; });
    Entry fresh;
    fresh.record = rec;
    fresh.state = MemberState::kDead;  // not live, so SetState counts it in
    fresh.since = now;
    it = members_.insert(it, std::move(fresh));
    SetState(*it, state, rec->incarnation, now);
    it->since = now;
    probe_order_stale_ = true;
    return true;
  }
  if (!IsNews(*e, rec->kind, rec->incarnation)) return false;
  e->record = std::move(rec);
  SetState(*e, state, e->record->incarnation, now);
  return true;
}

void Gossip::Refute(uint64_t incarnation, Clock::time_point now) {
  if (left_ || incarnation < own_->incarnation) return;
  Republish(incarnation, now);
  ++counters_.refutations;
}

bool Gossip::ApplySuspect(const NodeId& id, uint64_t incarnation, Clock::time_point now) {
  if (id == self_id_) {
    Refute(incarnation, now);
    return false;
  }
  Entry* e = FindEntry(id);
  if (e == nullptr) return false;
  if ((e->state == MemberState::kAlive && incarnation >= e->incarnation) ||
      (e->state == MemberState::kSuspect && incarnation > e->incarnation)) {
    SetState(*e, MemberState::kSuspect, incarnation, now);
    return true;
  }
  return false;
}

bool Gossip::ApplyDead(const NodeId& id, uint64_t incarnation, Clock::time_point now) {
  if (id == self_id_) {
    Refute(incarnation, now);
    return false;
  }
  Entry* e = FindEntry(id);
  if (e == nullptr || !Live(e->state) || incarnation < e->incarnation) return false;
  SetState(*e, MemberState::kDead, incarnation, now);
  return true;
}

void Gossip::Republish(uint64_t at_least, Clock::time_point now) {
  MemberRecord fields;
  fields.kind = left_ ? MemberKind::kLeft : MemberKind::kAlive;
  fields.incarnation = std::max(own_->incarnation, at_least) + 1;
  fields.address = self_.address;
  fields.capacity = self_.capacity;
  fields.free = self_.free;
  fields.coordinate = vivaldi_.coordinate();
  // The fields were checked when the first record was signed, and the coordinate is kept
  // valid by Vivaldi::Update, so signing cannot fail here.
  auto rec = SignMemberRecord(key_, std::move(fields));
  if (!rec.ok()) return;
  own_ = std::make_shared<const MemberRecord>(std::move(*rec));
  last_republish_ = now;
  Queue(self_id_, RecordUpdate(*own_));
}

Datagram Gossip::Packet(const NodeId& to, const std::string& address, uint8_t type, ByteSpan body,
                        ByteSpan first) {
  Datagram d;
  d.to = to;
  d.address = address;
  ByteWriter w(&d.bytes);
  w.Raw(kMagic);
  w.U8(kGossipVersion);
  w.U8(type);
  w.Raw(self_id_.span());
  // The seq is the first 8 bytes of the body (see callers).
  w.Raw(body);
  size_t count_at = d.bytes.size();
  w.U8(0);
  uint8_t count = 0;
  if (!first.empty() && d.bytes.size() + first.size() <= options_.max_packet_bytes) {
    w.Raw(first);
    ++count;
  }
  // The least sent first; ties in queue order (older first).
  std::stable_sort(
      broadcasts_.begin(), broadcasts_.end(),
      [](const Broadcast& a, const Broadcast& b) { return a.transmits < b.transmits; });
  size_t limit = RetransmitLimit();
  for (auto& b : broadcasts_) {
    if (count == 255) break;
    if (d.bytes.size() + b.update.size() > options_.max_packet_bytes) continue;
    if (!first.empty() && b.update.size() == first.size() &&
        std::equal(first.begin(), first.end(), b.update.begin())) {
      continue;
    }
    w.Raw(b.update);
    ++b.transmits;
    ++count;
  }
  std::erase_if(broadcasts_, [&](const Broadcast& b) { return b.transmits >= limit; });
  d.bytes[count_at] = count;
  ++counters_.packets_sent;
  counters_.bytes_sent += d.bytes.size();
  return d;
}

namespace {

Bytes SeqAnd(uint64_t seq, ByteSpan rest) {
  Bytes b;
  ByteWriter w(&b);
  w.U64(seq);
  w.Raw(rest);
  return b;
}

}  // namespace

void Gossip::RebuildProbeOrder() {
  probe_order_.clear();
  for (size_t i = 0; i < members_.size(); ++i) {
    if (Live(members_[i].state)) probe_order_.push_back(static_cast<uint32_t>(i));
  }
  for (size_t i = probe_order_.size(); i > 1; --i) {
    std::swap(probe_order_[i - 1], probe_order_[Random() % i]);
  }
  probe_next_ = 0;
  probe_order_stale_ = false;
}

std::optional<size_t> Gossip::NextProbeTarget() {
  if (probe_order_stale_) RebuildProbeOrder();
  for (int pass = 0; pass < 2; ++pass) {
    while (probe_next_ < probe_order_.size()) {
      size_t i = probe_order_[probe_next_++];
      if (i < members_.size() && Live(members_[i].state)) return i;
    }
    RebuildProbeOrder();
  }
  return std::nullopt;
}

void Gossip::StartProbe(Clock::time_point now, std::vector<Datagram>& out) {
  auto i = NextProbeTarget();
  if (!i) return;
  const Entry& e = members_[*i];
  Probe p;
  p.target = e.record->id;
  p.seq = Random();
  p.start = now;
  probe_ = p;
  ++counters_.probes;
  // A member we suspect hears so first (Lifeguard's "buddy system"), so that it refutes at
  // once if it is alive, instead of waiting for the gossip to reach it.
  Bytes first;
  if (e.state == MemberState::kSuspect) first = Notice(kUpdateSuspect, p.target, e.incarnation);
  out.push_back(Packet(p.target, e.record->address, kPing, SeqAnd(p.seq, p.target.span()), first));
}

void Gossip::Spread(std::vector<Datagram>& out) {
  if (broadcasts_.empty() || members_.empty()) return;
  std::vector<const Entry*> picked;
  for (int draw = 0; static_cast<int>(picked.size()) < options_.gossip_fanout &&
                     draw < 4 * options_.gossip_fanout && !broadcasts_.empty();
       ++draw) {
    const Entry* e = &members_[Random() % members_.size()];
    if (!Live(e->state) || std::find(picked.begin(), picked.end(), e) != picked.end()) continue;
    picked.push_back(e);
    out.push_back(Packet(e->record->id, e->record->address, kGossip, SeqAnd(Random(), {})));
    ++counters_.gossip_packets;
  }
}

std::vector<Datagram> Gossip::Tick(Clock::time_point now) {
  std::vector<Datagram> out;
  if (now - last_tick_ > options_.period) {
    // This process stood still: what its probes did not hear in that time says nothing about
    // the others, and suspicions it held had no chance to be refuted to it.
    ++counters_.stalls;
    auto gap = now - last_tick_;
    probe_.reset();
    relays_.clear();
    for (auto& [id, deadline] : suspicion_deadlines_) deadline += gap;
    next_probe_ = now;
  }
  last_tick_ = now;
  if (left_) return out;

  if (probe_) {
    if (!probe_->indirect_sent && now >= probe_->start + options_.ping_timeout) {
      probe_->indirect_sent = true;
      ++counters_.indirect_probes;
      const Entry* target = FindEntry(probe_->target);
      // Helpers drawn at random from the alive members (a few draws each, so a probe costs
      // the same in a network of any size).
      std::vector<const Entry*> helpers;
      for (int draw = 0; target != nullptr && !members_.empty() &&
                         static_cast<int>(helpers.size()) < options_.indirect_fanout &&
                         draw < 4 * options_.indirect_fanout;
           ++draw) {
        const Entry* h = &members_[Random() % members_.size()];
        if (h->state != MemberState::kAlive || h == target ||
            std::find(helpers.begin(), helpers.end(), h) != helpers.end()) {
          continue;
        }
        helpers.push_back(h);
      }
      for (const Entry* h : helpers) {
        Bytes body = SeqAnd(probe_->seq, probe_->target.span());
        body.push_back(static_cast<uint8_t>(target->record->address.size()));
        body.insert(body.end(), target->record->address.begin(), target->record->address.end());
        out.push_back(Packet(h->record->id, h->record->address, kPingReq, body));
      }
    }
    if (now >= probe_->start + options_.period) {
      Entry* e = FindEntry(probe_->target);
      if (e != nullptr && e->state == MemberState::kAlive) {
        SetState(*e, MemberState::kSuspect, e->incarnation, now);
        Queue(e->record->id, Notice(kUpdateSuspect, e->record->id, e->incarnation));
        ++counters_.suspicions;
      }
      probe_.reset();
    }
  }

  for (auto it = suspicion_deadlines_.begin(); it != suspicion_deadlines_.end();) {
    if (now < it->second) {
      ++it;
      continue;
    }
    NodeId id = it->first;
    it = suspicion_deadlines_.erase(it);
    Entry* e = FindEntry(id);
    if (e != nullptr && e->state == MemberState::kSuspect) {
      uint64_t inc = e->incarnation;
      SetState(*e, MemberState::kDead, inc, now);
      Queue(id, Notice(kUpdateDead, id, inc));
      ++counters_.deaths;
    }
  }
  std::erase_if(relays_, [&](const auto& kv) { return now >= kv.second.expires; });

  if (!probe_ && now >= next_probe_) {
    StartProbe(now, out);
    next_probe_ = std::max(next_probe_ + options_.period, now);
    if (next_probe_ == now) next_probe_ = now + options_.period;
  }

  if (now >= next_gossip_) {
    next_gossip_ = now + options_.gossip_interval;
    Spread(out);
  }

  if (now - last_republish_ >= options_.republish) {
    const MemberRecord& o = *own_;
    uint64_t free_step = std::max<uint64_t>(1, self_.capacity / 100);
    uint64_t free_diff = o.free > self_.free ? o.free - self_.free : self_.free - o.free;
    const backend::Coordinate& c = vivaldi_.coordinate();
    double size = std::sqrt(std::inner_product(o.coordinate.vec.begin(), o.coordinate.vec.end(),
                                               o.coordinate.vec.begin(), 0.0)) +
                  o.coordinate.height;
    if (o.capacity != self_.capacity || free_diff >= free_step ||
        CoordinateMove(o.coordinate, c) > std::max(1.0, 0.1 * size)) {
      Republish(0, now);
    } else {
      last_republish_ = now;
    }
  }

  if (now >= next_reap_) {
    next_reap_ = now + ReapInterval();
    std::erase_if(members_, [&](const Entry& e) {
      bool gone = !Live(e.state) && now - e.since > options_.dead_retention;
      if (gone) probe_order_stale_ = true;
      return gone;
    });
  }
  return out;
}

std::vector<Datagram> Gossip::Receive(ByteSpan packet, const std::string& from,
                                      Clock::time_point now) {
  std::vector<Datagram> out;
  ++counters_.packets_received;
  ParsedPacket p;
  if (!Parse(packet, &p) || p.sender == self_id_) {
    ++counters_.bad_packets;
    return out;
  }
  for (const ParsedUpdate& u : p.updates) {
    if (u.tag == kUpdateRecord) {
      MemberRecordKey key = PeekMemberRecord(u.record);
      // Only news is worth a signature check.
      if (key.id != self_id_) {
        const Entry* e = FindEntry(key.id);
        if (e != nullptr && !IsNews(*e, key.kind, key.incarnation)) continue;
      } else if (key.incarnation <= own_->incarnation) {
        continue;
      }
      auto rec = VerifyMemberRecord(u.record);
      if (!rec.ok()) {
        ++counters_.records_rejected;
        continue;
      }
      auto shared = std::make_shared<const MemberRecord>(std::move(*rec));
      if (ApplyRecord(shared, now)) Queue(shared->id, RecordUpdate(*shared));
    } else if (u.tag == kUpdateSuspect) {
      if (ApplySuspect(u.id, u.incarnation, now)) {
        Queue(u.id, Notice(kUpdateSuspect, u.id, u.incarnation));
      }
    } else if (ApplyDead(u.id, u.incarnation, now)) {
      Queue(u.id, Notice(kUpdateDead, u.id, u.incarnation));
    }
  }

  switch (p.type) {
    case kPing: {
      if (p.target != self_id_) {
        // Meant for a node that was at this address before.
        ++counters_.misdirected;
        break;
      }
      // A sender we hold for suspect or dead hears so first, so that it refutes at once.
      Bytes first;
      if (const Entry* e = FindEntry(p.sender); e != nullptr) {
        if (e->state == MemberState::kSuspect) {
          first = Notice(kUpdateSuspect, p.sender, e->incarnation);
        } else if (e->state == MemberState::kDead) {
          first = Notice(kUpdateDead, p.sender, e->incarnation);
        }
      }
      Bytes body;
      ByteWriter w(&body);
      w.U64(p.seq);
      w.U8(0);
      backend::PutCoordinate(w, vivaldi_.coordinate());
      out.push_back(Packet(p.sender, from, kAck, body, first));
      break;
    }
    case kAck: {
      if (probe_ && p.seq == probe_->seq) {
        if ((p.ack_flags & kAckIndirect) == 0 && p.sender == probe_->target) {
          double rtt = Millis(now - probe_->start);
          double median = rtts_.Add(p.sender, std::max(rtt, 0.001));
          vivaldi_.Update(p.coordinate, median);
        }
        probe_.reset();
        break;
      }
      auto relay = relays_.find(p.seq);
      if (relay != relays_.end()) {
        Bytes body;
        ByteWriter w(&body);
        w.U64(relay->second.requester_seq);
        w.U8(kAckIndirect);
        backend::PutCoordinate(w, vivaldi_.coordinate());
        out.push_back(Packet(relay->second.requester_id, relay->second.requester, kAck, body));
        relays_.erase(relay);
      }
      break;
    }
    case kGossip:
      break;  // its updates were all it had
    case kPingReq: {
      if (p.target == self_id_ || left_) break;
      uint64_t seq = Random();
      relays_[seq] = Relay{from, p.sender, p.seq, now + options_.period};
      out.push_back(Packet(p.target, p.target_address, kPing, SeqAnd(seq, p.target.span())));
      break;
    }
  }
  return out;
}

Status Gossip::Merge(ByteSpan record, Clock::time_point now) {
  auto rec = VerifyMemberRecord(record);
  if (!rec.ok()) {
    ++counters_.records_rejected;
    return rec.status();
  }
  MergeRecord(std::make_shared<const MemberRecord>(std::move(*rec)), now);
  return Status::Ok();
}

void Gossip::MergeRecord(std::shared_ptr<const MemberRecord> record, Clock::time_point now) {
  const MemberRecord& r = *record;
  if (ApplyRecord(record, now)) Queue(r.id, RecordUpdate(r));
}

void Gossip::MergeVerified(std::span<const std::shared_ptr<const MemberRecord>> records,
                           Clock::time_point now) {
  std::vector<Entry> fresh;
  for (const auto& rec : records) {
    if (rec->id == self_id_ || FindEntry(rec->id) != nullptr) {
      ApplyRecord(rec, now);
      continue;
    }
    Entry e;
    e.record = rec;
    e.state = rec->kind == MemberKind::kLeft ? MemberState::kLeft : MemberState::kAlive;
    e.incarnation = rec->incarnation;
    e.since = now;
    fresh.push_back(std::move(e));
  }
  if (fresh.empty()) return;
  auto by_id = [](const Entry& a, const Entry& b) { return a.record->id < b.record->id; };
  std::sort(fresh.begin(), fresh.end(), by_id);
  fresh.erase(
      std::unique(fresh.begin(), fresh.end(),
                  [](const Entry& a, const Entry& b) { return a.record->id == b.record->id; }),
      fresh.end());
  for (const Entry& e : fresh) {
    if (Live(e.state)) ++live_;
  }
  size_t mid = members_.size();
  members_.insert(members_.end(), std::make_move_iterator(fresh.begin()),
                  std::make_move_iterator(fresh.end()));
  std::inplace_merge(members_.begin(), members_.begin() + static_cast<ptrdiff_t>(mid),
                     members_.end(), by_id);
  probe_order_stale_ = true;
}

void Gossip::MergeOpinion(const NodeId& id, uint64_t incarnation, Clock::time_point now) {
  if (ApplySuspect(id, incarnation, now)) {
    Queue(id, Notice(kUpdateSuspect, id, incarnation));
  }
}

void Gossip::UpdateSelf(uint64_t capacity, uint64_t free) {
  self_.capacity = capacity;
  self_.free = free;
}

std::vector<Datagram> Gossip::Leave(Clock::time_point now) {
  std::vector<Datagram> out;
  if (left_) return out;
  left_ = true;
  probe_.reset();
  Republish(0, now);
  Bytes update = RecordUpdate(*own_);
  std::vector<size_t> alive;
  for (size_t i = 0; i < members_.size(); ++i) {
    if (Live(members_[i].state)) alive.push_back(i);
  }
  for (size_t i = alive.size(); i > 1; --i) std::swap(alive[i - 1], alive[Random() % i]);
  if (alive.size() > 32) alive.resize(32);
  for (size_t i : alive) {
    const Entry& e = members_[i];
    out.push_back(Packet(e.record->id, e.record->address, kPing,
                         SeqAnd(Random(), e.record->id.span()), update));
  }
  return out;
}

MemberView Gossip::SelfView() const {
  MemberView me;
  me.record = own_;
  me.state = left_ ? MemberState::kLeft : MemberState::kAlive;
  me.incarnation = own_->incarnation;
  me.since = last_republish_;
  me.self = true;
  return me;
}

MemberView Gossip::ViewOf(const Entry& e) const {
  MemberView v;
  v.record = e.record;
  v.state = e.state;
  v.incarnation = e.incarnation;
  v.since = e.since;
  v.rtt_ms = rtts_.Median(e.record->id);
  return v;
}

std::vector<MemberView> Gossip::Members() const {
  std::vector<MemberView> out;
  out.reserve(members_.size() + 1);
  out.push_back(SelfView());
  for (const Entry& e : members_) out.push_back(ViewOf(e));
  return out;
}

std::optional<MemberView> Gossip::Find(const NodeId& id) const {
  if (id == self_id_) return SelfView();
  const Entry* e = FindEntry(id);
  if (e == nullptr) return std::nullopt;
  return ViewOf(*e);
}

std::vector<std::shared_ptr<const MemberRecord>> Gossip::Records() const {
  std::vector<std::shared_ptr<const MemberRecord>> out;
  out.reserve(members_.size() + 1);
  out.push_back(own_);
  for (const Entry& e : members_) out.push_back(e.record);
  return out;
}

}  // namespace shardfs::net
