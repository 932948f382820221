// Renders a chat template for the golden comparison against Python's jinja2
// (tests/runtime/jinja/jinja_golden.py).
//
// Usage: jinja_main TEMPLATE_FILE CONTEXT_JSON_FILE [UNIX_SECONDS]
// Prints the rendering to stdout byte for byte; on an error prints "StatusCode: message" to
// stderr and exits 1. UNIX_SECONDS fixes the clock strftime_now() reads.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "base/file.h"
#include "runtime/jinja/jinja.h"

namespace {

int Fail(const std::string& message) {
  std::cerr << message << "\n";
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return Fail("usage: jinja_main TEMPLATE_FILE CONTEXT_JSON_FILE [UNIX_SECONDS]");
  auto source = hubnode::ReadFileToString(argv[1], uint64_t{16} << 20);
  if (!source.ok()) return Fail(source.status().ToString());
  auto context_text = hubnode::ReadFileToString(argv[2], uint64_t{64} << 20);
  if (!context_text.ok()) return Fail(context_text.status().ToString());
  // ordered_json keeps the context's key order, as Python's json.loads does.
  nlohmann::ordered_json context = nlohmann::ordered_json::parse(*context_text, nullptr, false);
  if (context.is_discarded()) return Fail("context is not valid JSON");
  hubnode::runtime::jinja::Options options;
  if (argc > 3) {
    auto at = std::chrono::system_clock::time_point(std::chrono::seconds(std::atoll(argv[3])));
    options.now = [at] { return at; };
  }
  auto tmpl = hubnode::runtime::jinja::Template::Parse(*source, options);
  if (!tmpl.ok()) return Fail(tmpl.status().ToString());
  auto out = tmpl->Render(context);
  if (!out.ok()) return Fail(out.status().ToString());
  std::fwrite(out->data(), 1, out->size(), stdout);
  return 0;
}
