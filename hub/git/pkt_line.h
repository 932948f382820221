// Git's pkt-line framing (gitprotocol-common): a 4-hex-digit length that counts itself, then the
// payload; "0000" flush, "0001" delimiter (protocol v2), "0002" response end. Payloads are at most
// 65516 bytes. Input is untrusted: every length is checked.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::hub::git {

inline constexpr size_t kMaxPktPayload = 65516;

// One pkt-line holding `payload` (REQUIRES: payload.size() <= kMaxPktPayload).
std::string Pkt(std::string_view payload);
inline std::string Flush() { return "0000"; }
inline std::string Delim() { return "0001"; }

// Data on side-band channel `band` (1 pack data, 2 progress, 3 error), cut into pkt-lines.
std::string SideBand(int band, std::string_view data);

struct PktLine {
  enum class Kind { kData, kFlush, kDelim, kEnd } kind = Kind::kData;
  std::string_view data;  // kData only; a trailing '\n' is kept
  // The payload without its trailing newline.
  std::string_view text() const {
    return !data.empty() && data.back() == '\n' ? data.substr(0, data.size() - 1) : data;
  }
};

// Reads pkt-lines from a buffer.
class PktReader {
 public:
  explicit PktReader(std::string_view in) : in_(in) {}
  // The next line; nullopt at the end of the input; InvalidArgument on a malformed length.
  Result<std::optional<PktLine>> Next();
  // What follows the lines read so far (a pack after the commands of a push).
  std::string_view rest() const { return in_.substr(pos_); }

 private:
  std::string_view in_;
  size_t pos_ = 0;
};

}  // namespace hubnode::hub::git
