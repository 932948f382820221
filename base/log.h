// Minimal leveled logging to stderr: one line per message, with a UTC timestamp and the level.
//
// Never log secrets (tokens, keys): callers pass only what is safe to show.
// Thread safety: all functions may be called concurrently; lines never interleave.
#pragma once

#include <sstream>
#include <string_view>

namespace hubnode {

enum class LogLevel { kDebug = 0, kInfo, kWarning, kError };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
void LogLine(LogLevel level, std::string_view message);

namespace internal {
class LogMessage {
 public:
  explicit LogMessage(LogLevel level) : level_(level) {}
  ~LogMessage() { LogLine(level_, stream_.str()); }
  std::ostringstream& stream() { return stream_; }

 private:
  LogLevel level_;
  std::ostringstream stream_;
};
}  // namespace internal

}  // namespace hubnode

// LOG(INFO) << "imported " << n << " files";
#define HUBNODE_LOG_kDebug ::hubnode::LogLevel::kDebug
#define LOG(level)                                                            \
  if (::hubnode::LogLevel::k##level < ::hubnode::GetLogLevel()) {             \
  } else                                                                      \
    ::hubnode::internal::LogMessage(::hubnode::LogLevel::k##level).stream()
