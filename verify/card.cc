#include "verify/card.h"

#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <cstdint>
#include <set>
#include <sstream>

namespace hubnode::verify {
namespace {

using json = nlohmann::json;

bool IsNewline(char c) { return c == '\n' || c == '\r'; }
bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }

// Whether a closing `---` line starts at newline run position p: [\r\n]+ "---" (\r\n | \n | end).
bool ClosesAt(std::string_view s, size_t p) {
  if (p >= s.size() || !IsNewline(s[p])) return false;
  size_t q = p;
  while (q < s.size() && IsNewline(s[q])) ++q;
  if (s.substr(q, 3) != "---") return false;
  q += 3;
  return q == s.size() || s[q] == '\n' || s.substr(q, 2) == "\r\n";
}

// The Hub's ^(\s*---[\r\n]+)([\S\s]*?)([\r\n]+---(\r\n|\n|$)), as a regex engine matches it:
// the opening newlines greedy, the YAML the shortest that a closing line follows.
bool FindBlock(std::string_view s, size_t* begin, size_t* end) {
  size_t i = 0;
  while (i < s.size() && IsSpace(s[i])) ++i;
  // \s* is greedy but may give back: "---" must follow it; whitespace before it cannot end in a
  // newline run that "---" needs, so the first "---" after the whitespace is the only candidate.
  if (s.substr(i, 3) != "---") return false;
  i += 3;
  size_t run = i;
  while (run < s.size() && IsNewline(s[run])) ++run;
  if (run == i) return false;  // [\r\n]+ needs one
  for (size_t p = run; p < s.size(); ++p) {
    if (IsNewline(s[p]) && ClosesAt(s, p)) {
      *begin = run;
      *end = p;
      return true;
    }
  }
  // Backtracking: the opening gives back its last newline, which then starts the closing line
  // directly ("---\n\n---\n": empty YAML).
  if (run - i >= 2 && ClosesAt(s, run - 1)) {
    *begin = *end = run - 1;
    return true;
  }
  return false;
}

// Thrown inside the event handler to stop yaml-cpp (which reports through exceptions) at a limit;
// caught in ParseCardFrontMatter, never beyond.
struct Refused {
  std::string why;
};

class JsonBuilder final : public YAML::EventHandler {
 public:
  json root;
  std::vector<std::string> duplicates;

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override { Add(nullptr); }
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {
    throw Refused{"YAML aliases are not accepted in a model card"};
  }
  void OnScalar(const YAML::Mark&, const std::string& tag, YAML::anchor_t, const std::string& value) override {
    scalar_bytes_ += value.size();
    if (scalar_bytes_ > kMaxCardScalarBytes) throw Refused{"the front matter's text is over 1 MiB"};
    Frame* top = stack_.empty() ? nullptr : &stack_.back();
    if (top && top->map && !top->have_key) {  // a key
      top->key = value;
      top->have_key = true;
      Count();
      return;
    }
    Add(Typed(tag, value));
  }
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Open(false);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {
    Open(true);
  }
  void OnMapEnd() override { Close(); }

 private:
  struct Frame {
    json value;
    bool map = false;
    bool have_key = false;
    std::string key;
    std::set<std::string> seen;
  };

  static json Typed(const std::string& tag, const std::string& s) {
    if (tag != "?") return s;  // quoted or explicitly tagged: a string
    if (s == "true" || s == "True" || s == "TRUE") return true;
    if (s == "false" || s == "False" || s == "FALSE") return false;
    if (s.empty() || s == "null" || s == "~" || s == "Null" || s == "NULL") return nullptr;
    int64_t i;
    auto r = std::from_chars(s.data(), s.data() + s.size(), i);
    if (r.ec == std::errc() && r.ptr == s.data() + s.size()) return i;
    double d;
    auto rd = std::from_chars(s.data(), s.data() + s.size(), d);
    if (rd.ec == std::errc() && rd.ptr == s.data() + s.size()) return d;
    return s;
  }

  void Count() {
    if (++nodes_ > kMaxCardNodes) throw Refused{"the front matter has over 100000 nodes"};
  }

  void Open(bool map) {
    Count();
    if (!stack_.empty() && stack_.back().map && !stack_.back().have_key) {
      throw Refused{"a key of the front matter is not a string"};
    }
    if (static_cast<int>(stack_.size()) >= kMaxCardDepth) throw Refused{"the front matter nests deeper than 32 levels"};
    Frame f;
    f.map = map;
    f.value = map ? json::object() : json::array();
    stack_.push_back(std::move(f));
  }

  void Close() {
    json v = std::move(stack_.back().value);
    stack_.pop_back();
    Place(std::move(v));
  }

  void Add(json v) {
    Count();
    if (!stack_.empty() && stack_.back().map && !stack_.back().have_key) {
      // A null key ("? " or an empty key): not a string key.
      throw Refused{"a key of the front matter is not a string"};
    }
    Place(std::move(v));
  }

  void Place(json v) {
    if (stack_.empty()) {
      root = std::move(v);
      return;
    }
    Frame& top = stack_.back();
    if (!top.map) {
      top.value.push_back(std::move(v));
      return;
    }
    if (!top.seen.insert(top.key).second) duplicates.push_back(top.key);
    top.value[top.key] = std::move(v);  // the last value wins, as the Hub reads it
    top.have_key = false;
  }

  std::vector<Frame> stack_;
  size_t nodes_ = 0;
  size_t scalar_bytes_ = 0;
};

}  // namespace

CardFrontMatter ParseCardFrontMatter(std::string_view readme) {
  CardFrontMatter out;
  size_t begin = 0, end = 0;
  if (!FindBlock(readme, &begin, &end)) {
    out.findings.push_back("README.md has no YAML front matter");
    return out;
  }
  out.present = true;
  out.begin = begin;
  out.end = end;
  if (end - begin > kMaxCardYaml) {
    out.findings.push_back("README.md front matter is over 1 MiB");
    return out;
  }
  JsonBuilder builder;
  try {
    std::stringstream in{std::string(readme.substr(begin, end - begin))};
    YAML::Parser parser(in);
    parser.HandleNextDocument(builder);
    // A second document in the block ("---" lines inside are not the closing line only when they
    // are followed by more text on the line) is not a card.
    JsonBuilder rest;
    if (parser.HandleNextDocument(rest)) {
      out.findings.push_back("README.md front matter holds more than one YAML document");
      return out;
    }
  } catch (const Refused& r) {
    out.findings.push_back("README.md front matter refused: " + r.why);
    return out;
  } catch (const std::exception& e) {
    out.findings.push_back(std::string("README.md front matter is not valid YAML: ") + e.what());
    return out;
  }
  if (builder.root.is_null()) {
    out.data = json::object();  // an empty block: no metadata
    return out;
  }
  if (!builder.root.is_object()) {
    out.findings.push_back("README.md front matter is not a mapping");
    return out;
  }
  for (const std::string& k : builder.duplicates) {
    out.findings.push_back("README.md front matter gives the key '" + k.substr(0, 100) +
                           "' more than once (its last value counts, as on the Hub)");
  }
  out.data = std::move(builder.root);
  return out;
}

}  // namespace hubnode::verify
