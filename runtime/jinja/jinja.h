// A Jinja2 interpreter for the subset that Hugging Face chat templates use.
//
// Chat templates are Jinja2 source stored in tokenizer_config.json or chat_template.jinja; both the
// template and the context (the request's messages, tools and kwargs) are untrusted. Parse() turns
// the source into an immutable tree once; Render() evaluates it against a JSON context with
// transformers' environment: ImmutableSandboxedEnvironment(trim_blocks, lstrip_blocks) with the
// loopcontrols extension ({% break %}, {% continue %}), the {% generation %} block, and the globals
// raise_exception and strftime_now plus transformers' own tojson filter (json.dumps with
// ensure_ascii=False, no HTML escaping; see jinja_json.cc).
//
// Every resource is bounded: source size, parser nesting, output size, evaluation steps, loop
// iterations, macro recursion, value nesting, and the bytes allocated or scanned while rendering.
// Exceeding a bound is ResourceExhausted; malformed templates are InvalidArgument. Nothing here
// throws or asserts on input.
//
// Known deviations from Jinja2 are listed at the top of jinja_builtins.cc (ASCII-only case
// mapping, 64-bit integers, generators rendered as lists, no Markup escaping).
//
// Thread safety: a Template is immutable after Parse(); Render() may be called concurrently.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::runtime::jinja {

struct Node;  // The parsed tree (jinja_ast.h).

struct Options {
  // Removes the first newline after a block or comment tag, as transformers renders.
  // Default: true.
  bool trim_blocks = true;
  // Strips spaces and tabs from the start of a line up to a block or comment tag.
  // Default: true.
  bool lstrip_blocks = true;
  // Largest rendered output, and largest string any expression may build.
  // Default: 4 MiB.
  size_t max_output_bytes = size_t{4} << 20;
  // Expression and statement evaluations per render; bounds time on small values.
  // Default: 10,000,000.
  uint64_t max_steps = 10'000'000;
  // Loop iterations per render, summed over all loops; also the longest list range() may build.
  // Default: 1,000,000.
  uint64_t max_loop_iterations = 1'000'000;
  // Nested macro calls.
  // Default: 64.
  int max_call_depth = 64;
  // Bytes allocated or scanned by string and list operations per render; bounds time and memory
  // on large values (a long chat is rendered in a few times its own size).
  // Default: 512 MiB.
  uint64_t max_work_bytes = uint64_t{512} << 20;
  // The clock strftime_now() reads (transformers calls datetime.now(), i.e. local time; we format
  // with localtime_r too). Tests inject a fixed time here.
  // Default: empty, meaning std::chrono::system_clock::now.
  std::function<std::chrono::system_clock::time_point()> now;
};

class Template {
 public:
  // Parses `source` once. InvalidArgument ("line:column: why") on syntax errors and on
  // unsupported tags (extends, include, import, block, call, recursive loops); ResourceExhausted
  // when the source exceeds 1 MiB or nests deeper than 256 levels.
  static Result<Template> Parse(std::string_view source, const Options& options = {});

  // Renders with a JSON object context: its keys become template variables (messages,
  // add_generation_prompt, bos_token, eos_token, tools, and any template kwargs).
  // raise_exception('msg') yields InvalidArgument whose message is exactly 'msg'. Undefined
  // variables behave like Jinja2's default Undefined: they render empty, are falsy, iterate as
  // empty, and `is defined` is false, while attribute or item access on them, arithmetic and
  // tojson are errors (InvalidArgument "line N: ..."), as are Python TypeErrors and the immutable
  // sandbox's refusals (list.append). Limits in Options give ResourceExhausted.
  // nlohmann::json keeps object keys sorted, so tojson of a dict prints sorted keys; pass
  // ordered_json to keep the request's key order as Python's json.loads does.
  Result<std::string> Render(const nlohmann::ordered_json& context) const;
  Result<std::string> Render(const nlohmann::json& context) const;

 private:
  Template(std::shared_ptr<const Node> root, Options options)
      : root_(std::move(root)), options_(std::move(options)) {}

  // shared_ptr: the tree is immutable, and copies of a Template share it.
  std::shared_ptr<const Node> root_;
  Options options_;
};

}  // namespace hubnode::runtime::jinja
