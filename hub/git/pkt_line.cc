#include "hub/git/pkt_line.h"

#include <cstdio>

namespace hubnode::hub::git {

std::string Pkt(std::string_view payload) {
  char len[5];
  std::snprintf(len, sizeof len, "%04zx", payload.size() + 4);
  std::string out(len, 4);
  out.append(payload);
  return out;
}

std::string SideBand(int band, std::string_view data) {
  std::string out;
  constexpr size_t kMax = kMaxPktPayload - 1;
  out.reserve(data.size() + (data.size() / kMax + 1) * 5);
  while (!data.empty()) {
    size_t n = std::min(data.size(), kMax);
    char head[6];
    std::snprintf(head, sizeof head, "%04zx", n + 5);
    out.append(head, 4);
    out.push_back(static_cast<char>(band));
    out.append(data.substr(0, n));
    data.remove_prefix(n);
  }
  return out;
}

Result<std::optional<PktLine>> PktReader::Next() {
  if (pos_ == in_.size()) return std::optional<PktLine>();
  if (in_.size() - pos_ < 4) return InvalidArgumentError("truncated pkt-line length");
  size_t len = 0;
  for (size_t i = 0; i < 4; ++i) {
    char c = in_[pos_ + i];
    int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (v < 0) return InvalidArgumentError("malformed pkt-line length");
    len = len * 16 + static_cast<size_t>(v);
  }
  PktLine line;
  if (len < 4) {
    pos_ += 4;
    if (len == 0) line.kind = PktLine::Kind::kFlush;
    else if (len == 1) line.kind = PktLine::Kind::kDelim;
    else if (len == 2) line.kind = PktLine::Kind::kEnd;
    else return InvalidArgumentError("malformed pkt-line length");
    return std::optional<PktLine>(line);
  }
  if (len - 4 > kMaxPktPayload) return InvalidArgumentError("pkt-line length out of range");
  if (in_.size() - pos_ < len) return InvalidArgumentError("truncated pkt-line");
  line.data = in_.substr(pos_ + 4, len - 4);
  pos_ += len;
  return std::optional<PktLine>(line);
}

}  // namespace hubnode::hub::git
