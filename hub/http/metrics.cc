#include "hub/http/metrics.h"

#include <sstream>

namespace hubnode::hub {

void Metrics::Record(std::string_view route, int status, double seconds) {
  std::lock_guard<std::mutex> lock(mu_);
  ++requests_[{std::string(route), status}];
  size_t b = 0;
  while (b < kBuckets.size() && seconds > kBuckets[b]) ++b;
  ++latency_[b];
  latency_sum_ += seconds;
  ++latency_count_;
}

std::string Metrics::Render(uint64_t store_disk_bytes) {
  std::ostringstream o;
  std::lock_guard<std::mutex> lock(mu_);
  o << "# HELP hubnode_http_requests_total HTTP requests by route and status.\n"
       "# TYPE hubnode_http_requests_total counter\n";
  for (const auto& [k, n] : requests_) {
    o << "hubnode_http_requests_total{route=\"" << k.first << "\",status=\"" << k.second << "\"} " << n << "\n";
  }
  o << "# HELP hubnode_http_response_bytes_total File bytes sent in response bodies.\n"
       "# TYPE hubnode_http_response_bytes_total counter\n"
       "hubnode_http_response_bytes_total " << bytes_served_.load() << "\n";
  o << "# HELP hubnode_http_request_duration_seconds Time to answer a request (headers and body).\n"
       "# TYPE hubnode_http_request_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += latency_[i];
    o << "hubnode_http_request_duration_seconds_bucket{le=\"" << kBuckets[i] << "\"} " << cumulative << "\n";
  }
  cumulative += latency_[kBuckets.size()];
  o << "hubnode_http_request_duration_seconds_bucket{le=\"+Inf\"} " << cumulative << "\n"
    << "hubnode_http_request_duration_seconds_sum " << latency_sum_ << "\n"
    << "hubnode_http_request_duration_seconds_count " << latency_count_ << "\n";
  o << "# HELP hubnode_store_disk_bytes Size of the store's database files.\n"
       "# TYPE hubnode_store_disk_bytes gauge\n"
       "hubnode_store_disk_bytes " << store_disk_bytes << "\n";
  return o.str();
}

}  // namespace hubnode::hub
