// libFuzzer target: chat-template parsing and rendering (runtime/jinja.h) of an arbitrary
// template against a fixed chat context. Small limits keep each input fast; the interpreter
// must return a Status for every input, never crash, hang or exhaust memory.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "runtime/jinja/jinja.h"

namespace {

const nlohmann::ordered_json& Context() {
  static const nlohmann::ordered_json context = nlohmann::ordered_json::parse(R"({
    "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": true,
    "enable_thinking": false,
    "tools": [{"type": "function", "function": {"name": "f", "description": "d",
               "parameters": {"type": "object", "properties": {"a": {"type": "number"}}}}}],
    "messages": [
      {"role": "system", "content": "sys é"},
      {"role": "user", "content": "hi <think>x</think> y"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "abcdefghi", "type": "function", "function": {"name": "f", "arguments": {"a": 1.5}}}]},
      {"role": "tool", "content": "2"},
      {"role": "assistant", "content": "done", "reasoning_content": "r"}]
  })");
  return context;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  hubnode::runtime::jinja::Options options;
  options.max_output_bytes = 64 << 10;
  options.max_steps = 200'000;
  options.max_loop_iterations = 20'000;
  options.max_work_bytes = 16 << 20;
  options.now = [] { return std::chrono::system_clock::time_point(std::chrono::seconds(0)); };
  std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = hubnode::runtime::jinja::Template::Parse(source, options);
  if (!tmpl.ok()) return 0;
  (void)tmpl->Render(Context());
  return 0;
}
