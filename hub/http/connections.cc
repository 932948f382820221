#include "hub/http/connections.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "base/log.h"

namespace hubnode::hub {
namespace {

using Clock = std::chrono::steady_clock;

struct Conn {
  int fd = -1;
  std::string ip, local_ip;
  int port = 0, local_port = 0;
  std::string buf;        // bytes received and not yet read by the request parser
  size_t pos = 0;         // buf[pos..] is unread
  size_t scanned = 0;     // buf[pos..scanned) holds no end of a request head
  bool head_started = false;
  bool draining = false;  // answered and half-closed: what the client still sends is discarded
  bool linger = false;    // served its last request: to be half-closed and drained
  Clock::time_point deadline;
  size_t served = 0;

  size_t unread() const { return buf.size() - pos; }
  // The length of the whole request head buffered (a blank line ends it; bare LFs are accepted),
  // or 0 while it is incomplete.
  size_t HeadLength() {
    if (scanned < pos) scanned = pos;
    const size_t from = scanned >= pos + 3 ? scanned - 3 : pos;
    for (size_t i = from; i + 1 < buf.size(); ++i) {
      if (buf[i] == '\n' && buf[i + 1] == '\n') return i + 2 - pos;
      if (buf[i] == '\n' && buf[i + 1] == '\r' && i + 2 < buf.size() && buf[i + 2] == '\n') return i + 3 - pos;
    }
    scanned = buf.size();
    return 0;
  }
  void Compact() {
    if (pos == buf.size()) {
      buf.clear();
      pos = scanned = 0;
    } else if (pos > (64u << 10)) {
      buf.erase(0, pos);
      scanned -= pos;
      pos = 0;
    }
  }
};

bool Poll(int fd, short events, int timeout_s) {
  pollfd p{fd, events, 0};
  for (;;) {
    int r = ::poll(&p, 1, timeout_s * 1000);
    if (r > 0) return (p.revents & (events | POLLHUP | POLLERR)) != 0;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

// One connection's request, as httplib reads and writes it: buffered bytes first, then the socket
// (non-blocking, waited on with poll and the read or write timeout).
class ConnStream final : public httplib::Stream {
 public:
  ConnStream(Conn& c, int read_timeout_s, int write_timeout_s)
      : c_(c), read_timeout_s_(read_timeout_s), write_timeout_s_(write_timeout_s) {}
  bool is_readable() const override { return c_.unread() > 0 || Poll(c_.fd, POLLIN, read_timeout_s_); }
  bool is_writable() const override { return Poll(c_.fd, POLLOUT, write_timeout_s_); }
  ssize_t read(char* ptr, size_t size) override {
    if (c_.unread() > 0) {
      const size_t n = std::min(size, c_.unread());
      std::memcpy(ptr, c_.buf.data() + c_.pos, n);
      c_.pos += n;
      c_.Compact();
      return static_cast<ssize_t>(n);
    }
    for (;;) {
      ssize_t n = ::recv(c_.fd, ptr, size, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if ((errno == EAGAIN || errno == EWOULDBLOCK) && Poll(c_.fd, POLLIN, read_timeout_s_)) continue;
      return -1;
    }
  }
  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      ssize_t n = ::send(c_.fd, ptr + done, size - done, MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n < 0 && errno == EINTR) {
        continue;
      } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && Poll(c_.fd, POLLOUT, write_timeout_s_)) {
        continue;
      } else {
        return -1;
      }
    }
    return static_cast<ssize_t>(size);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.ip;
    port = c_.port;
  }
  void get_local_ip_and_port(std::string& ip, int& port) const override {
    ip = c_.local_ip;
    port = c_.local_port;
  }
  socket_t socket() const override { return c_.fd; }

 private:
  Conn& c_;
  int read_timeout_s_, write_timeout_s_;
};

void Address(const sockaddr_storage& a, std::string* ip, int* port) {
  char text[INET6_ADDRSTRLEN] = {0};
  if (a.ss_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
    ::inet_ntop(AF_INET, &v4->sin_addr, text, sizeof text);
    *port = ntohs(v4->sin_port);
  } else if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    ::inet_ntop(AF_INET6, &v6->sin6_addr, text, sizeof text);
    *port = ntohs(v6->sin6_port);
  }
  *ip = text;
}

// A last answer written without waiting (the connection is closed right after).
void Refuse(int fd, int status, const char* reason, const char* code, const std::string& message) {
  const std::string body = "{\"error\":\"" + message + "\"}";
  const std::string r = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                        "\r\nContent-Type: application/json\r\nX-Error-Code: " + code + "\r\nX-Error-Message: " +
                        message + "\r\nConnection: close\r\nContent-Length: " + std::to_string(body.size()) +
                        "\r\n\r\n" + body;
  [[maybe_unused]] ssize_t n = ::send(fd, r.data(), r.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

struct ConnectionLoop::Impl {
  ConnectionOptions o;
  int listen_fd;
  ServeOne serve;
  int epfd = -1, spare_fd = -1;
  std::atomic<int> wake_fd{-1};
  std::atomic<bool> stopping{false};

  std::mutex mu;  // guards everything below
  std::condition_variable cv;
  std::unordered_map<Conn*, std::unique_ptr<Conn>> all;
  std::deque<Conn*> ready;    // heads complete, for the workers
  std::vector<Conn*> returned;  // served, for the loop to wait on again
  std::unordered_map<std::string, size_t> open_per_ip, active_per_ip;
  std::unordered_map<std::string, std::deque<Conn*>> pending_per_ip;  // at their address's active cap
  std::unordered_set<Conn*> waiting;  // in epoll (the loop thread only)
  size_t active_cap = 1;

  static inline char kListenTag, kWakeTag;

  void Wake() {
    uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(wake_fd, &one, sizeof one);
  }

  // REQUIRES: mu held; c in neither epoll nor a queue.
  void CloseLocked(Conn* c) {
    ::close(c->fd);
    if (--open_per_ip[c->ip] == 0) open_per_ip.erase(c->ip);
    all.erase(c);
  }

  // REQUIRES: mu held.
  void DispatchLocked(Conn* c) {
    if (active_per_ip[c->ip] < active_cap) {
      ++active_per_ip[c->ip];
      ready.push_back(c);
      cv.notify_one();
    } else {
      pending_per_ip[c->ip].push_back(c);
    }
  }

  void Watch(Conn* c, Clock::time_point deadline) {
    c->deadline = deadline;
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLRDHUP;
    ev.data.ptr = c;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
      std::lock_guard lock(mu);
      CloseLocked(c);
      return;
    }
    waiting.insert(c);
  }

  void Unwatch(Conn* c) {
    ::epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, nullptr);
    waiting.erase(c);
  }

  void AcceptAll() {
    for (;;) {
      sockaddr_storage addr{};
      socklen_t len = sizeof addr;
      int fd = ::accept4(listen_fd, reinterpret_cast<sockaddr*>(&addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
          // Out of descriptors: free the spare one to accept and drop the connection, so the
          // listening socket does not stay readable forever.
          ::close(spare_fd);
          int drop = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
          if (drop >= 0) {
            Refuse(drop, 503, "Service Unavailable", "TooManyConnections", "this node has too many connections");
            ::close(drop);
          }
          spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
          LOG(Warning) << "out of file descriptors: a connection was refused";
          continue;
        }
        return;  // EAGAIN: all accepted
      }
      auto c = std::make_unique<Conn>();
      c->fd = fd;
      Address(addr, &c->ip, &c->port);
      sockaddr_storage local{};
      socklen_t local_len = sizeof local;
      if (::getsockname(fd, reinterpret_cast<sockaddr*>(&local), &local_len) == 0) Address(local, &c->local_ip, &c->local_port);
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      Conn* raw = c.get();
      {
        std::lock_guard lock(mu);
        if (all.size() >= o.max_connections || open_per_ip[c->ip] >= o.max_connections_per_ip) {
          Refuse(fd, 503, "Service Unavailable", "TooManyConnections",
                 all.size() >= o.max_connections ? "this node has too many connections"
                                                 : "too many connections from your address");
          ::close(fd);
          if (open_per_ip[c->ip] == 0) open_per_ip.erase(c->ip);
          continue;
        }
        ++open_per_ip[c->ip];
        all.emplace(raw, std::move(c));
      }
      Watch(raw, Clock::now() + std::chrono::seconds(o.header_timeout_s));
    }
  }

  // Answers a refused head and closes gently: a close with unread input would reset the
  // connection and could destroy the answer before the client reads it.
  void RefuseAndDrain(Conn* c, int status, const char* reason, const char* code, const std::string& message) {
    Refuse(c->fd, status, reason, code, message);
    ::shutdown(c->fd, SHUT_WR);
    c->draining = true;
    c->buf.clear();
    c->pos = c->scanned = 0;
    Watch(c, Clock::now() + std::chrono::seconds(2));
  }

  void OnReadable(Conn* c) {
    char tmp[16 << 10];
    if (c->draining) {
      for (;;) {
        ssize_t n = ::recv(c->fd, tmp, sizeof tmp, 0);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        break;
      }
      Unwatch(c);
      std::lock_guard lock(mu);
      CloseLocked(c);
      return;
    }
    for (;;) {
      ssize_t n = ::recv(c->fd, tmp, sizeof tmp, 0);
      if (n > 0) {
        if (!c->head_started) {  // the head's clock starts (a new connection's runs since the accept)
          c->head_started = true;
          c->deadline = std::min(c->deadline, Clock::now() + std::chrono::seconds(o.header_timeout_s));
        }
        c->buf.append(tmp, static_cast<size_t>(n));
        if (c->unread() > o.max_head_bytes + sizeof tmp) break;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      Unwatch(c);  // closed by the client, or an error
      std::lock_guard lock(mu);
      CloseLocked(c);
      return;
    }
    const size_t head = c->HeadLength();
    if (head > 0 && head <= o.max_head_bytes) {
      Unwatch(c);
      std::lock_guard lock(mu);
      DispatchLocked(c);
    } else if (head > o.max_head_bytes || c->unread() > o.max_head_bytes) {
      Unwatch(c);
      RefuseAndDrain(c, 431, "Request Header Fields Too Large", "HeadersTooLarge",
                     "the request head is over " + std::to_string(o.max_head_bytes) + " bytes");
    }
  }

  void TakeReturned() {
    std::vector<Conn*> back;
    {
      std::lock_guard lock(mu);
      back.swap(returned);
    }
    for (Conn* c : back) {
      if (stopping) {
        std::lock_guard lock(mu);
        CloseLocked(c);
      } else if (c->linger) {
        // A close with unread input resets the connection, which can destroy the answer before
        // the client reads it (a refused upload's client is still sending): half-close, then
        // discard what comes for up to 2 s.
        ::shutdown(c->fd, SHUT_WR);
        c->draining = true;
        c->buf.clear();
        c->pos = c->scanned = 0;
        Watch(c, Clock::now() + std::chrono::seconds(2));
      } else if (c->HeadLength() > 0) {  // a pipelined request is already here (its size checked then)
        std::lock_guard lock(mu);
        DispatchLocked(c);
      } else {
        c->head_started = c->unread() > 0;
        Watch(c, Clock::now() + std::chrono::seconds(c->head_started ? o.header_timeout_s : o.idle_timeout_s));
      }
    }
  }

  void Expire() {
    const auto now = Clock::now();
    std::vector<Conn*> late;
    for (Conn* c : waiting) {
      if (now > c->deadline) late.push_back(c);
    }
    for (Conn* c : late) {
      Unwatch(c);
      if (c->head_started && !c->draining) {
        RefuseAndDrain(c, 408, "Request Timeout", "RequestTimeout",
                       "the request head did not arrive within " + std::to_string(o.header_timeout_s) + " s");
        continue;
      }
      std::lock_guard lock(mu);
      CloseLocked(c);
    }
  }

  void Work() {
    for (;;) {
      Conn* c = nullptr;
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !ready.empty() || stopping; });
        if (ready.empty()) return;
        c = ready.front();
        ready.pop_front();
      }
      ConnStream stream(*c, o.read_timeout_s, o.write_timeout_s);
      const bool close = stopping || c->served + 1 >= o.keep_alive_max;
      bool closed = false, ok = false;
      try {
        ok = serve(stream, close, closed);
      } catch (const std::exception& e) {
        LOG(Error) << "serving a request: " << e.what();
      }
      ++c->served;
      std::lock_guard lock(mu);
      if (--active_per_ip[c->ip] == 0) active_per_ip.erase(c->ip);
      if (auto p = pending_per_ip.find(c->ip); p != pending_per_ip.end()) {
        Conn* next = p->second.front();
        p->second.pop_front();
        if (p->second.empty()) pending_per_ip.erase(p);
        ++active_per_ip[next->ip];
        ready.push_back(next);
        cv.notify_one();
      }
      if (!ok || closed || close) {
        c->linger = true;
      }
      returned.push_back(c);
      Wake();
    }
  }
};

ConnectionLoop::ConnectionLoop(const ConnectionOptions& options, int listen_fd, ServeOne serve)
    : impl_(new Impl{options, listen_fd, std::move(serve)}) {}

ConnectionLoop::~ConnectionLoop() = default;

void ConnectionLoop::Stop() {
  impl_->stopping = true;
  if (impl_->wake_fd.load() >= 0) impl_->Wake();
  impl_->cv.notify_all();
}

Status ConnectionLoop::Run() {
  Impl& m = *impl_;
  // Each connection is a descriptor: take what the hard limit allows.
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &lim);
  }
  m.active_cap = m.o.max_active_per_ip ? m.o.max_active_per_ip : std::max<size_t>(1, m.o.workers * 3 / 4);
  ::fcntl(m.listen_fd, F_SETFL, ::fcntl(m.listen_fd, F_GETFL) | O_NONBLOCK);
  ::listen(m.listen_fd, 1024);  // httplib listened with a backlog of 5: a burst was reset
  m.epfd = ::epoll_create1(EPOLL_CLOEXEC);
  m.wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  m.spare_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (m.epfd < 0 || m.wake_fd < 0) return InternalError(std::string("epoll: ") + std::strerror(errno));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = &Impl::kListenTag;
  ::epoll_ctl(m.epfd, EPOLL_CTL_ADD, m.listen_fd, &ev);
  ev.data.ptr = &Impl::kWakeTag;
  ::epoll_ctl(m.epfd, EPOLL_CTL_ADD, m.wake_fd, &ev);
  std::vector<std::thread> workers;
  for (unsigned i = 0; i < std::max(1u, m.o.workers); ++i) workers.emplace_back([&m] { m.Work(); });

  auto last_expire = Clock::now();
  std::vector<epoll_event> events(256);
  while (!m.stopping) {
    int n = ::epoll_wait(m.epfd, events.data(), static_cast<int>(events.size()), 250);
    for (int i = 0; i < n && !m.stopping; ++i) {
      void* tag = events[i].data.ptr;
      if (tag == &Impl::kListenTag) {
        m.AcceptAll();
      } else if (tag == &Impl::kWakeTag) {
        uint64_t v;
        [[maybe_unused]] ssize_t r = ::read(m.wake_fd, &v, sizeof v);
      } else {
        m.OnReadable(static_cast<Conn*>(tag));
      }
    }
    m.TakeReturned();
    if (Clock::now() - last_expire > std::chrono::milliseconds(250)) {
      m.Expire();
      last_expire = Clock::now();
    }
  }
  // Stop: no more connections; the waiting ones close, the ones being served finish first.
  ::close(m.listen_fd);
  for (Conn* c : std::vector<Conn*>(m.waiting.begin(), m.waiting.end())) {
    m.Unwatch(c);
    std::lock_guard lock(m.mu);
    m.CloseLocked(c);
  }
  {
    std::lock_guard lock(m.mu);
    for (Conn* c : m.ready) m.CloseLocked(c);
    m.ready.clear();
    for (auto& [ip, q] : m.pending_per_ip) {
      for (Conn* c : q) m.CloseLocked(c);
    }
    m.pending_per_ip.clear();
  }
  m.cv.notify_all();
  for (auto& t : workers) t.join();
  std::lock_guard lock(m.mu);
  for (Conn* c : m.returned) m.CloseLocked(c);
  m.returned.clear();
  while (!m.all.empty()) m.CloseLocked(m.all.begin()->first);
  ::close(m.epfd);
  ::close(m.wake_fd.exchange(-1));
  if (m.spare_fd >= 0) ::close(m.spare_fd);
  m.epfd = m.spare_fd = -1;
  return OkStatus();
}

}  // namespace hubnode::hub
