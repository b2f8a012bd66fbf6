#include "net/gossip_agent.h"

#include <array>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <unordered_map>

#include <boost/asio.hpp>

#include "base/logging.h"
#include "base/splitmix64.h"
#include "base/wall_clock.h"
#include "net/http_membership.h"
#include "net/members_json.h"

namespace shardfs::net {

namespace asio = boost::asio;
using udp = asio::ip::udp;
using Clock = Gossip::Clock;

class GossipAgent::Impl {
 public:
  Impl(std::unique_ptr<Gossip> gossip, GossipAgentOptions options)
      : gossip_(std::move(gossip)), options_(std::move(options)), socket_(io_), timer_(io_) {
    tick_ = std::max<Clock::duration>(options_.gossip.period / 10, std::chrono::milliseconds(5));
  }

  Status Bind(const HostPort& bind) {
    SFS_ASSIGN_OR_RETURN(udp::endpoint ep, Endpoint(bind));
    boost::system::error_code ec;
    socket_.open(ep.protocol(), ec);
    if (!ec) socket_.bind(ep, ec);
    if (ec) {
      return Status::IOError("gossip: cannot bind UDP " + bind.ToString() + ": " + ec.message());
    }
    return Status::Ok();
  }

  void Start() {
    Receive();
    ScheduleTick();
    io_thread_ = std::thread([this] { io_.run(); });
    sync_thread_ = std::thread([this] { SyncLoop(); });
  }

  void Leave(std::chrono::milliseconds linger) {
    std::vector<Datagram> out;
    {
      std::lock_guard<std::mutex> lock(mu_);
      out = gossip_->Leave(Clock::now());
    }
    asio::post(io_, [this, out = std::move(out)]() mutable { SendAll(out); });
    std::unique_lock<std::mutex> lock(sync_mu_);
    sync_cv_.wait_for(lock, linger, [&] { return stopping_; });
  }

  void Stop() {
    {
      std::lock_guard<std::mutex> lock(sync_mu_);
      if (stopped_) return;
      stopping_ = true;
      stopped_ = true;
    }
    sync_cv_.notify_all();
    io_.stop();
    if (io_thread_.joinable()) io_thread_.join();
    if (sync_thread_.joinable()) sync_thread_.join();
  }

  std::vector<MemberView> Members() const {
    std::lock_guard<std::mutex> lock(mu_);
    return gossip_->Members();
  }

  std::string ViewJson() {
    std::lock_guard<std::mutex> lock(mu_);
    return EncodeMembersView(*gossip_, Clock::now());
  }

  Status MergeRecords(ByteSpan body) {
    std::vector<std::shared_ptr<const MemberRecord>> records;
    while (!body.empty()) {
      auto len = MemberRecordLength(body);
      if (!len.ok()) return len.status();
      auto rec = VerifyMemberRecord(body.first(*len));
      if (!rec.ok()) return rec.status();
      records.push_back(std::make_shared<const MemberRecord>(std::move(*rec)));
      body = body.subspan(*len);
    }
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& r : records) gossip_->MergeRecord(std::move(r), Clock::now());
    return Status::Ok();
  }

 private:
  void Receive() {
    socket_.async_receive_from(
        asio::buffer(buf_), from_, [this](const boost::system::error_code& ec, size_t n) {
          if (ec == asio::error::operation_aborted) return;
          if (!ec) {
            std::string from = HostPort{from_.address().to_string(), from_.port()}.ToString();
            std::vector<Datagram> out;
            {
              std::lock_guard<std::mutex> lock(mu_);
              out = gossip_->Receive(ByteSpan(buf_.data(), n), from, Clock::now());
            }
            SendAll(out);
          }
          Receive();
        });
  }

  void ScheduleTick() {
    timer_.expires_after(tick_);
    timer_.async_wait([this](const boost::system::error_code& ec) {
      if (ec) return;
      Clock::time_point now = Clock::now();
      if (options_.space && now >= next_space_) {
        next_space_ = now + std::chrono::seconds(5);
        auto [capacity, free] = options_.space();
        std::lock_guard<std::mutex> lock(mu_);
        gossip_->UpdateSelf(capacity, free);
      }
      std::vector<Datagram> out;
      {
        std::lock_guard<std::mutex> lock(mu_);
        out = gossip_->Tick(now);
      }
      SendAll(out);
      ScheduleTick();
    });
  }

  // Runs on the io thread.
  void SendAll(std::vector<Datagram>& out) {
    if (options_.test_send_delay.count() > 0 && !out.empty()) {
      auto timer = std::make_shared<asio::steady_timer>(io_, options_.test_send_delay);
      timer->async_wait(
          [this, timer, out = std::move(out)](const boost::system::error_code& ec) mutable {
            if (!ec) SendNow(out);
          });
      return;
    }
    SendNow(out);
  }

  void SendNow(std::vector<Datagram>& out) {
    for (Datagram& d : out) {
      auto ep = Resolve(d.address);
      if (!ep) continue;
      boost::system::error_code ec;
      socket_.send_to(asio::buffer(d.bytes), *ep, 0, ec);
      if (ec) log::Debug("gossip: send to {} failed: {}", d.address, ec.message());
    }
  }

  std::optional<udp::endpoint> Resolve(const std::string& address) {
    auto it = resolved_.find(address);
    if (it != resolved_.end()) return it->second;
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return std::nullopt;
    auto ep = Endpoint(*hp);
    if (!ep.ok()) {
      log::Debug("gossip: {}", ep.status().ToString());
      return std::nullopt;
    }
    if (resolved_.size() >= 4096) resolved_.clear();
    resolved_[address] = *ep;
    return *ep;
  }

  // The UDP endpoint of `hp`: its address as written, or the first the resolver gives.
  Result<udp::endpoint> Endpoint(const HostPort& hp) {
    boost::system::error_code ec;
    auto addr = asio::ip::make_address(hp.host, ec);
    if (!ec) return udp::endpoint(addr, hp.port);
    udp::resolver resolver(io_);
    auto results = resolver.resolve(hp.host, std::to_string(hp.port), ec);
    if (ec || results.empty()) {
      return Status::InvalidArgument("cannot resolve " + hp.host + ": " + ec.message());
    }
    return results.begin()->endpoint();
  }

  // Push-pull: our records to `address`, its view back.
  bool PushPull(const std::string& address) {
    auto hp = ParseHostPort(address);
    if (!hp.ok()) return false;
    std::string body;
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (const auto& r : gossip_->Records()) {
        if (body.size() + r->encoded.size() > kMaxMembersBody) break;  // this node's is first
        body.append(r->encoded.begin(), r->encoded.end());
      }
    }
    auto view = FetchMembers(*hp, options_.http_timeout, body);
    if (!view.ok()) {
      // A node that answers with a bad view is worth a warning; one that does not answer not.
      if (view.status().code() == Code::kInvalidArgument) {
        log::Warn("gossip: {} answered push-pull with a bad view: {}", address,
                  view.status().ToString());
      } else {
        log::Debug("gossip: push-pull with {} failed: {}", address, view.status().ToString());
      }
      return false;
    }
    if (view->rejected > 0) {
      log::Warn("gossip: {} passed on {} member record(s) that do not verify", address,
                view->rejected);
    }
    std::vector<std::shared_ptr<const MemberRecord>> records;
    for (auto& m : view->members) {
      records.push_back(std::make_shared<const MemberRecord>(std::move(m.record)));
    }
    std::lock_guard<std::mutex> lock(mu_);
    Clock::time_point now = Clock::now();
    gossip_->MergeVerified(records, now);
    for (size_t i = 0; i < records.size(); ++i) {
      MemberState s = view->members[i].state;
      if (s == MemberState::kSuspect || s == MemberState::kDead) {
        gossip_->MergeOpinion(records[i]->id, view->members[i].incarnation, now);
      }
    }
    return true;
  }

  void SyncLoop() {
    uint64_t rng = static_cast<uint64_t>(WallClockNs());
    bool joined = options_.join.empty();
    while (true) {
      std::string target;
      std::vector<std::string> joins;
      {
        std::lock_guard<std::mutex> lock(mu_);
        std::vector<std::string> live;
        for (const MemberView& m : gossip_->Members()) {
          if (!m.self && m.state == MemberState::kAlive) live.push_back(m.record->address);
        }
        if (!live.empty()) target = live[SplitMix64Next(&rng) % live.size()];
      }
      if (!joined || target.empty()) joins = options_.join;
      for (const std::string& j : joins) {
        if (PushPull(j)) {
          if (!joined) log::Info("gossip: joined the network through {}", j);
          joined = true;
          break;
        }
      }
      if (!target.empty() && joins.empty()) PushPull(target);
      auto wait = joined ? options_.push_pull_interval : options_.join_retry;
      std::unique_lock<std::mutex> lock(sync_mu_);
      if (sync_cv_.wait_for(lock, wait, [&] { return stopping_; })) return;
    }
  }

  mutable std::mutex mu_;  // guards gossip_
  std::unique_ptr<Gossip> gossip_;
  const GossipAgentOptions options_;
  asio::io_context io_;
  udp::socket socket_;
  asio::steady_timer timer_;
  Clock::duration tick_;
  Clock::time_point next_space_{};
  std::array<uint8_t, 65536> buf_{};
  udp::endpoint from_;
  std::unordered_map<std::string, udp::endpoint> resolved_;  // io thread only
  std::thread io_thread_;
  std::thread sync_thread_;
  std::mutex sync_mu_;
  std::condition_variable sync_cv_;
  bool stopping_ = false;  // guarded by sync_mu_
  bool stopped_ = false;   // guarded by sync_mu_
};

Result<std::unique_ptr<GossipAgent>> GossipAgent::Start(crypto::SigningKey key, GossipSelf self,
                                                        const HostPort& bind,
                                                        GossipAgentOptions options) {
  for (const auto& j : options.join) {
    auto hp = ParseHostPort(j);
    if (!hp.ok()) return hp.status().WithContext("--join " + j);
  }
  if (options.push_pull_interval <= std::chrono::milliseconds(0) ||
      options.join_retry <= std::chrono::milliseconds(0)) {
    return Status::InvalidArgument("push-pull and join intervals must be above 0");
  }
  if (options.space) {
    auto [capacity, free] = options.space();
    self.capacity = capacity;
    self.free = free;
  }
  // Incarnations start at the wall clock in ms, so a restarted node's records are newer than
  // any it signed before (refutations and republishing add one at a time, far slower).
  auto gossip = Gossip::Create(std::move(key), std::move(self), options.gossip,
                               static_cast<uint64_t>(WallClockNs() / 1000000),
                               static_cast<uint64_t>(WallClockNs()), Clock::now());
  if (!gossip.ok()) return gossip.status();
  auto impl = std::make_unique<Impl>(std::move(*gossip), std::move(options));
  if (Status s = impl->Bind(bind); !s.ok()) return s;
  impl->Start();
  return std::unique_ptr<GossipAgent>(new GossipAgent(std::move(impl)));
}

GossipAgent::GossipAgent(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GossipAgent::~GossipAgent() { impl_->Stop(); }
void GossipAgent::Leave(std::chrono::milliseconds linger) {
  impl_->Leave(linger);
  impl_->Stop();
}
void GossipAgent::Stop() { impl_->Stop(); }
std::vector<MemberView> GossipAgent::Members() const { return impl_->Members(); }
std::string GossipAgent::ViewJson() { return impl_->ViewJson(); }
Status GossipAgent::MergeRecords(ByteSpan records) { return impl_->MergeRecords(records); }

}  // namespace shardfs::net
