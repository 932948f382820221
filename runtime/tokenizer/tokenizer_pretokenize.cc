// Pre-tokenizers (tokenizers pre_tokenizers/): Sequence, Split, ByteLevel, Metaspace, Digits,
// Punctuation, Whitespace, WhitespaceSplit, BertPreTokenizer, CharDelimiterSplit.
#include <algorithm>
#include <utility>

#include "runtime/tokenizer/tokenizer_pipeline.h"
#include "runtime/tokenizer/unicode.h"

namespace hubnode::runtime {
namespace {

// GPT-2's pattern, which ByteLevel uses when use_regex is true (pre_tokenizers/byte_level.rs).
constexpr std::string_view kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

struct MatchSpan {
  size_t start;
  size_t end;
  bool is_match;
};

// Applies `fn(piece, out)` to every piece that is not an added token.
template <typename Fn>
void ForEachOpenPiece(std::vector<Piece>* pieces, Fn fn) {
  std::vector<Piece> out;
  out.reserve(pieces->size());
  for (Piece& p : *pieces) {
    if (p.id >= 0) {
      out.push_back(std::move(p));
    } else {
      fn(p, &out);
    }
  }
  *pieces = std::move(out);
}

class SequencePreTokenizer : public PreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<PreTokenizer>> parts)
      : parts_(std::move(parts)) {}
  void Apply(std::vector<Piece>* pieces) const override {
    for (const auto& part : parts_) part->Apply(pieces);
  }

 private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPreTokenizer : public PreTokenizer {
 public:
  SplitPreTokenizer(Pattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void Apply(std::vector<Piece>* pieces) const override {
    ForEachOpenPiece(pieces, [&](const Piece& p, std::vector<Piece>* out) {
      SplitPiece(p, pattern_.FindAll(p.text), behavior_, invert_, out);
    });
  }

 private:
  Pattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

class ByteLevelPreTokenizer : public PreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, std::vector<Regex> regex)
      : add_prefix_space_(add_prefix_space), regex_(std::move(regex)) {}
  void Apply(std::vector<Piece>* pieces) const override {
    ForEachOpenPiece(pieces, [&](Piece& p, std::vector<Piece>* out) {
      if (add_prefix_space_ && (p.text.empty() || p.text[0] != ' ')) p.text.insert(0, " ");
      const size_t first = out->size();
      if (regex_.empty()) {
        if (!p.text.empty()) out->push_back(p);
      } else {
        SplitPiece(p, regex_.front().FindAll(p.text), SplitBehavior::kIsolated, false, out);
      }
      for (size_t i = first; i < out->size(); ++i) {
        std::string mapped;
        mapped.reserve((*out)[i].text.size() * 2);
        for (char ch : (*out)[i].text) mapped += ByteLevelChar(static_cast<uint8_t>(ch));
        (*out)[i].text = std::move(mapped);
      }
    });
  }

 private:
  bool add_prefix_space_;
  std::vector<Regex> regex_;  // empty when use_regex is false
};

enum class PrependScheme { kAlways, kFirst, kNever };

class MetaspacePreTokenizer : public PreTokenizer {
 public:
  MetaspacePreTokenizer(char32_t replacement, PrependScheme scheme, bool split)
      : scheme_(scheme), split_(split), replacement_cp_(replacement) {
    AppendUtf8(replacement, &replacement_);
  }
  void Apply(std::vector<Piece>* pieces) const override {
    ForEachOpenPiece(pieces, [&](Piece& p, std::vector<Piece>* out) {
      std::string text;
      text.reserve(p.text.size());
      for (char ch : p.text) {
        if (ch == ' ') {
          text += replacement_;
        } else {
          text.push_back(ch);
        }
      }
      const bool starts_with_rep = text.compare(0, replacement_.size(), replacement_) == 0;
      if (!starts_with_rep &&
          (scheme_ == PrependScheme::kAlways || (scheme_ == PrependScheme::kFirst && p.at_start))) {
        text.insert(0, replacement_);
      }
      p.text = std::move(text);
      if (!split_) {
        if (!p.text.empty()) out->push_back(p);
        return;
      }
      const char32_t rep = replacement_cp_;
      SplitPiece(p, CharMatches(p.text, [rep](char32_t c) { return c == rep; }),
                 SplitBehavior::kMergedWithNext, false, out);
    });
  }

 private:
  std::string replacement_;
  PrependScheme scheme_;
  bool split_;
  char32_t replacement_cp_;
};

// Pre-tokenizers that split on a character predicate.
template <typename Pred>
class CharSplitPreTokenizer : public PreTokenizer {
 public:
  CharSplitPreTokenizer(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void Apply(std::vector<Piece>* pieces) const override {
    ForEachOpenPiece(pieces, [&](const Piece& p, std::vector<Piece>* out) {
      SplitPiece(p, CharMatches(p.text, pred_), behavior_, false, out);
    });
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <typename Pred>
std::unique_ptr<PreTokenizer> MakeCharSplit(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Pred>>(pred, behavior);
}

// Whitespace: the regex `\w+|[^\w\s]+` (Rust regex crate), keeping the matches. Runs of word
// characters and runs of other non-space characters become pieces; whitespace is dropped.
class WhitespacePreTokenizer : public PreTokenizer {
 public:
  void Apply(std::vector<Piece>* pieces) const override {
    ForEachOpenPiece(pieces, [&](const Piece& p, std::vector<Piece>* out) {
      std::vector<Span> matches;
      int run_kind = 0;  // 0 none, 1 word, 2 other
      for (size_t i = 0; i < p.text.size();) {
        const Utf8Char c = DecodeUtf8At(p.text, i);
        const int kind = IsWordChar(c.cp) ? 1 : IsWhitespace(c.cp) ? 0 : 2;
        if (kind != 0 && kind == run_kind) {
          matches.back().end = i + c.len;
        } else if (kind != 0) {
          matches.push_back({i, i + c.len});
        }
        run_kind = kind;
        i += c.len;
      }
      SplitPiece(p, matches, SplitBehavior::kRemoved, true, out);
    });
  }
};

}  // namespace

Result<SplitBehavior> ParseSplitBehavior(const Json& obj, std::string_view path,
                                         SplitBehavior fallback) {
  const Json* v = Member(obj, "behavior");
  if (v == nullptr) return fallback;
  if (!v->is_string()) return FieldError(JoinPath(path, "behavior"), "expected a string");
  const std::string& s = v->get_ref<const std::string&>();
  if (s == "Removed") return SplitBehavior::kRemoved;
  if (s == "Isolated") return SplitBehavior::kIsolated;
  if (s == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (s == "Contiguous") return SplitBehavior::kContiguous;
  return FieldError(JoinPath(path, "behavior"), "unknown behavior \"" + s + "\"");
}

void SplitPiece(const Piece& piece, const std::vector<Span>& matches, SplitBehavior behavior,
                bool invert, std::vector<Piece>* out) {
  const std::string& text = piece.text;
  // tokenizers' Pattern::find_matches: the spans cover the whole text.
  std::vector<MatchSpan> spans;
  size_t prev = 0;
  for (const Span& m : matches) {
    if (m.start < prev || m.end < m.start || m.end > text.size()) continue;
    if (m.start != prev) spans.push_back({prev, m.start, false});
    spans.push_back({m.start, m.end, true});
    prev = m.end;
  }
  if (prev != text.size() || spans.empty()) spans.push_back({prev, text.size(), false});
  if (invert) {
    for (MatchSpan& s : spans) s.is_match = !s.is_match;
  }
  // (start, end, remove) after the behaviour, as in NormalizedString::split.
  std::vector<MatchSpan> parts;
  switch (behavior) {
    case SplitBehavior::kIsolated:
      for (const MatchSpan& s : spans) parts.push_back({s.start, s.end, false});
      break;
    case SplitBehavior::kRemoved:
      parts = spans;
      break;
    case SplitBehavior::kContiguous: {
      bool previous_match = false;
      for (const MatchSpan& s : spans) {
        if (s.is_match == previous_match && !parts.empty()) {
          parts.back().end = s.end;
        } else {
          parts.push_back({s.start, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithPrevious: {
      bool previous_match = false;
      for (const MatchSpan& s : spans) {
        if (s.is_match && !previous_match && !parts.empty()) {
          parts.back().end = s.end;
        } else {
          parts.push_back({s.start, s.end, false});
        }
        previous_match = s.is_match;
      }
      break;
    }
    case SplitBehavior::kMergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !parts.empty()) {
          parts.back().start = it->start;
        } else {
          parts.push_back({it->start, it->end, false});
        }
        previous_match = it->is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    }
  }
  for (const MatchSpan& s : parts) {
    if (s.is_match || s.start == s.end) continue;  // is_match here means "remove"
    out->push_back({text.substr(s.start, s.end - s.start), -1, piece.at_start && s.start == 0});
  }
}

Result<std::unique_ptr<PreTokenizer>> ParsePreTokenizer(const Json& json, std::string_view path,
                                                        int depth) {
  if (depth > kMaxJsonNesting) return FieldError(path, "nested too deeply");
  ASSIGN_OR_RETURN(const std::string type, TypeOf(json, path));
  if (type == "Sequence") {
    const Json* list = Member(json, "pretokenizers");
    if (list == nullptr || !list->is_array()) {
      return FieldError(JoinPath(path, "pretokenizers"), "expected an array");
    }
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (size_t i = 0; i < list->size(); ++i) {
      const std::string sub = JoinPath(path, "pretokenizers[" + std::to_string(i) + "]");
      ASSIGN_OR_RETURN(auto part, ParsePreTokenizer((*list)[i], sub, depth + 1));
      parts.push_back(std::move(part));
    }
    return std::unique_ptr<PreTokenizer>(std::make_unique<SequencePreTokenizer>(std::move(parts)));
  }
  if (type == "Split") {
    ASSIGN_OR_RETURN(Pattern pattern, ParsePattern(json, "pattern", path));
    ASSIGN_OR_RETURN(const SplitBehavior behavior,
                     ParseSplitBehavior(json, path, SplitBehavior::kIsolated));
    ASSIGN_OR_RETURN(const bool invert, BoolMemberOr(json, "invert", path, false));
    return std::unique_ptr<PreTokenizer>(
        std::make_unique<SplitPreTokenizer>(std::move(pattern), behavior, invert));
  }
  if (type == "ByteLevel") {
    ASSIGN_OR_RETURN(const bool prefix, BoolMemberOr(json, "add_prefix_space", path, true));
    ASSIGN_OR_RETURN(const bool use_regex, BoolMemberOr(json, "use_regex", path, true));
    std::vector<Regex> regex;
    if (use_regex) {
      static const Result<Regex> gpt2 = Regex::Compile(kGpt2Pattern);
      if (!gpt2.ok()) return gpt2.status().WithContext("GPT-2 pattern");
      regex.push_back(gpt2.value());
    }
    return std::unique_ptr<PreTokenizer>(
        std::make_unique<ByteLevelPreTokenizer>(prefix, std::move(regex)));
  }
  if (type == "Metaspace") {
    ASSIGN_OR_RETURN(const char32_t rep, CharMember(json, "replacement", path, 0x2581));
    ASSIGN_OR_RETURN(const bool split, BoolMemberOr(json, "split", path, true));
    PrependScheme scheme = PrependScheme::kAlways;
    if (const Json* ps = Member(json, "prepend_scheme")) {
      const std::string s = ps->is_string() ? ps->get<std::string>() : "";
      if (s == "always") {
        scheme = PrependScheme::kAlways;
      } else if (s == "first") {
        scheme = PrependScheme::kFirst;
      } else if (s == "never") {
        scheme = PrependScheme::kNever;
      } else {
        return FieldError(JoinPath(path, "prepend_scheme"), "expected always, first or never");
      }
    } else {
      ASSIGN_OR_RETURN(const bool add, BoolMemberOr(json, "add_prefix_space", path, true));
      scheme = add ? PrependScheme::kAlways : PrependScheme::kNever;
    }
    return std::unique_ptr<PreTokenizer>(
        std::make_unique<MetaspacePreTokenizer>(rep, scheme, split));
  }
  if (type == "Digits") {
    ASSIGN_OR_RETURN(const bool individual, BoolMemberOr(json, "individual_digits", path, false));
    return MakeCharSplit([](char32_t c) { return IsNumeric(c); },
                         individual ? SplitBehavior::kIsolated : SplitBehavior::kContiguous);
  }
  if (type == "Punctuation") {
    ASSIGN_OR_RETURN(const SplitBehavior behavior,
                     ParseSplitBehavior(json, path, SplitBehavior::kIsolated));
    return MakeCharSplit([](char32_t c) { return IsPunctuation(c); }, behavior);
  }
  if (type == "Whitespace") {
    return std::unique_ptr<PreTokenizer>(std::make_unique<WhitespacePreTokenizer>());
  }
  if (type == "WhitespaceSplit") {
    return MakeCharSplit([](char32_t c) { return IsWhitespace(c); }, SplitBehavior::kRemoved);
  }
  if (type == "BertPreTokenizer") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    parts.push_back(
        MakeCharSplit([](char32_t c) { return IsWhitespace(c); }, SplitBehavior::kRemoved));
    parts.push_back(
        MakeCharSplit([](char32_t c) { return IsPunctuation(c); }, SplitBehavior::kIsolated));
    return std::unique_ptr<PreTokenizer>(std::make_unique<SequencePreTokenizer>(std::move(parts)));
  }
  if (type == "CharDelimiterSplit") {
    ASSIGN_OR_RETURN(const char32_t delim, CharMember(json, "delimiter", path, 0));
    if (delim == 0) return FieldError(JoinPath(path, "delimiter"), "missing");
    return MakeCharSplit([delim](char32_t c) { return c == delim; }, SplitBehavior::kRemoved);
  }
  return UnimplementedError("tokenizer.json: " + std::string(path) + ": pre_tokenizer type \"" +
                            type + "\" is not supported");
}

}  // namespace hubnode::runtime
