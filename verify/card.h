// A model card's front matter (README.md), read once for the whole node: the license policy,
// the derivative rules, repo info's `cardData`, validate-yaml and lineage all use this parser, so
// no two readers of one card can disagree. Private to verify/; re-exported by verify/verify.h.
//
// The block is found by the Hub's own rule (huggingface_hub's REGEX_YAML_BLOCK, "the exact same
// regex as in the hf hub server"): optional leading whitespace, a `---` line, the YAML, and a line
// that is exactly `---` (a line `---x: 1` does not end it). The YAML is read with limits, since a
// card comes from anyone who can commit: at most 1 MiB of YAML, 32 levels of nesting, 100,000
// nodes and 1 MiB of scalar text; aliases are refused (a 350-byte card of nested aliases would
// expand to gigabytes); keys are scalars. A key given twice keeps its last value, as the Hub
// reads it, and is a finding. Anything refused leaves `data` null with a finding: never a crash,
// never an exception.
//
// Thread safety: reentrant.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace hubnode::verify {

struct CardFrontMatter {
  bool present = false;  // a front matter block was found
  size_t begin = 0, end = 0;  // the YAML text's byte range in the README
  nlohmann::json data;   // the YAML as JSON (core schema scalars); null when absent or refused
  std::vector<std::string> findings;
};

inline constexpr size_t kMaxCardYaml = 1 << 20;
inline constexpr int kMaxCardDepth = 32;
inline constexpr size_t kMaxCardNodes = 100'000;
inline constexpr size_t kMaxCardScalarBytes = 1 << 20;

CardFrontMatter ParseCardFrontMatter(std::string_view readme);

}  // namespace hubnode::verify
