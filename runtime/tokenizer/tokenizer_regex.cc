#include "runtime/tokenizer/tokenizer_regex.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

constexpr size_t kMaxPatternBytes = 64 * 1024;
// The interpreter's heap for backtracking, in KiB. PCRE2's default (20 GB) is no bound at all.
constexpr uint32_t kHeapLimitKib = 64 * 1024;

// Per-thread match state: PCRE2 JIT stacks and match contexts must not be shared between threads
// that match at the same time, and creating them per call would cost more than most matches.
class ThreadMatchState {
 public:
  ThreadMatchState() {
    context_ = pcre2_match_context_create(nullptr);
    jit_stack_ = pcre2_jit_stack_create(32 * 1024, 8 * 1024 * 1024, nullptr);
    if (context_ != nullptr) {
      pcre2_set_heap_limit(context_, kHeapLimitKib);
      if (jit_stack_ != nullptr) pcre2_jit_stack_assign(context_, nullptr, jit_stack_);
    }
  }
  ~ThreadMatchState() {
    pcre2_jit_stack_free(jit_stack_);
    pcre2_match_context_free(context_);
  }
  ThreadMatchState(const ThreadMatchState&) = delete;
  ThreadMatchState& operator=(const ThreadMatchState&) = delete;

  pcre2_match_context* context() const { return context_; }

 private:
  pcre2_match_context* context_ = nullptr;
  pcre2_jit_stack* jit_stack_ = nullptr;
};

ThreadMatchState& MatchState() {
  thread_local ThreadMatchState state;
  return state;
}

// Oniguruma's Unicode \s and \w, which tokenizer.json patterns are written for, differ from PCRE2's
// UCP classes (PCRE2's \s includes U+180E; its \w includes letter numbers but no marks).
constexpr std::string_view kOnigSpace = "\\t-\\r\\x{85}\\p{Z}";
constexpr std::string_view kOnigWord = "\\p{L}\\p{M}\\p{N}\\p{Pc}";

// Rewrites \s, \S, \w and \W into explicit classes with Oniguruma's meaning. Inside a character
// class only the positive forms can be expanded; \S and \W stay PCRE2's there.
std::string TranslateOnigClasses(std::string_view p) {
  std::string out;
  out.reserve(p.size() + 32);
  bool in_class = false;
  size_t class_open = 0;  // index just after '[' or '[^'
  for (size_t i = 0; i < p.size(); ++i) {
    const char c = p[i];
    if (c == '\\' && i + 1 < p.size()) {
      const char e = p[i + 1];
      if (e == 'Q') {  // \Q...\E is literal text
        const size_t end = p.find("\\E", i + 2);
        const size_t stop = end == std::string_view::npos ? p.size() : end + 2;
        out.append(p.substr(i, stop - i));
        i = stop - 1;
        continue;
      }
      const std::string_view cls = (e == 's' || e == 'S')   ? kOnigSpace
                                   : (e == 'w' || e == 'W') ? kOnigWord
                                                            : std::string_view();
      if (!cls.empty() && !in_class) {
        out += (e == 's' || e == 'w') ? "[" : "[^";
        out += cls;
        out += "]";
      } else if (!cls.empty() && (e == 's' || e == 'w')) {
        out += cls;
      } else {
        out += c;
        out += e;
      }
      ++i;
      continue;
    }
    if (!in_class && c == '[') {
      in_class = true;
      out += c;
      if (i + 1 < p.size() && p[i + 1] == '^') out += p[++i];
      class_open = i + 1;
      continue;
    }
    if (in_class && c == '[' && i + 1 < p.size() && p[i + 1] == ':') {
      const size_t end = p.find(":]", i + 2);  // a POSIX class such as [:alpha:]
      if (end != std::string_view::npos) {
        out.append(p.substr(i, end + 2 - i));
        i = end + 1;
        continue;
      }
    }
    if (in_class && c == ']' && i != class_open) in_class = false;
    out += c;
  }
  return out;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* m) const { pcre2_match_data_free(m); }
};

}  // namespace

struct Regex::Code {
  pcre2_code* code = nullptr;
  ~Code() { pcre2_code_free(code); }
};

Result<Regex> Regex::Compile(std::string_view pattern) {
  if (pattern.size() > kMaxPatternBytes) {
    return InvalidArgumentError("regex pattern longer than 64 KiB");
  }
  if (!IsValidUtf8(pattern)) return InvalidArgumentError("regex pattern is not valid UTF-8");
  const std::string translated = TranslateOnigClasses(pattern);
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code =
      pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()), translated.size(),
                    PCRE2_UTF | PCRE2_UCP, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return InvalidArgumentError("bad regex at offset " + std::to_string(offset) + ": " +
                                reinterpret_cast<const char*>(message));
  }
  auto shared = std::make_shared<Code>();
  shared->code = code;
  // JIT is an optimisation only: when it is unavailable pcre2_match interprets the pattern.
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  return Regex(std::move(shared));
}

std::vector<Span> Regex::FindAll(std::string_view text) const {
  std::vector<Span> out;
  std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(
      pcre2_match_data_create_from_pattern(code_->code, nullptr));
  if (data == nullptr) return out;
  pcre2_match_context* context = MatchState().context();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t last_end = 0;
  bool have_last_match = false;
  size_t last_match_end = 0;
  while (last_end <= text.size()) {
    // NO_UTF_CHECK: the text was validated once; checking it on every call would be quadratic.
    int rc = pcre2_match(code_->code, subject, text.size(), last_end, PCRE2_NO_UTF_CHECK,
                         data.get(), context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code_->code, subject, text.size(), last_end,
                       PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data.get(), context);
    }
    if (rc < 0) break;  // no match, or a resource limit: the rest stays unmatched
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data.get());
    const size_t start = ovector[0];
    const size_t end = ovector[1];
    if (end < start) break;  // \K tricks can report end < start; treat as no further match
    if (start == end && have_last_match && last_match_end == end) {
      // Oniguruma's rule: step over one character and search again.
      if (last_end >= text.size()) break;
      last_end += DecodeUtf8At(text, last_end).len;
      continue;
    }
    out.push_back({start, end});
    last_end = end;
    have_last_match = true;
    last_match_end = end;
  }
  return out;
}

Pattern Pattern::Literal(std::string literal) {
  Pattern p;
  p.literal_ = std::move(literal);
  return p;
}

Pattern Pattern::FromRegex(Regex regex) {
  Pattern p;
  p.regex_.push_back(std::move(regex));
  return p;
}

std::vector<Span> Pattern::FindAll(std::string_view text) const {
  if (!regex_.empty()) return regex_.front().FindAll(text);
  std::vector<Span> out;
  if (literal_.empty()) return out;
  for (size_t pos = text.find(literal_); pos != std::string_view::npos;
       pos = text.find(literal_, pos + literal_.size())) {
    out.push_back({pos, pos + literal_.size()});
  }
  return out;
}

}  // namespace hubnode::runtime
