// tokenize_main: a small driver over runtime::Tokenizer for tests/runtime/tokenizer/tokenizer_golden.sh,
// which compares it with the Hugging Face reference.
//
// Usage: tokenize_main TOKENIZER_JSON [TOKENIZER_CONFIG_JSON]
// Reads one JSON value per line from stdin and writes one JSON object per line to stdout:
//   "text"        -> {"ids": [...], "ids_special": [...], "decoded": ..., "decoded_skip": ...,
//                     "streamed": ...}   (ids_special: add_special_tokens=true; decoded*: of ids;
//                                         streamed: DecodeStream over ids, concatenated)
//   [id, id, ...] -> {"decoded": ..., "decoded_skip": ..., "streamed": ..., "streamed_skip": ...}
// Exit status 2 when the tokenizer does not load (the Status goes to stderr), 1 on a bad line.
#include <cstdint>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "base/file.h"
#include "runtime/tokenizer/tokenizer.h"

namespace {

using hubnode::runtime::DecodeStream;
using hubnode::runtime::Tokenizer;
using Json = nlohmann::json;

std::string Streamed(const Tokenizer& tokenizer, const std::vector<int32_t>& ids, bool skip) {
  DecodeStream stream(tokenizer, skip);
  std::string out;
  for (int32_t id : ids) out += stream.Next(id);
  out += stream.Flush();
  return out;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || argc > 3) {
    std::cerr << "usage: tokenize_main TOKENIZER_JSON [TOKENIZER_CONFIG_JSON]\n";
    return 2;
  }
  constexpr uint64_t kMax = 64 << 20;
  auto json_text = hubnode::ReadFileToString(argv[1], kMax);
  if (!json_text.ok()) {
    std::cerr << json_text.status().ToString() << "\n";
    return 2;
  }
  std::string config_text;
  if (argc == 3) {
    auto c = hubnode::ReadFileToString(argv[2], kMax);
    if (!c.ok()) {
      std::cerr << c.status().ToString() << "\n";
      return 2;
    }
    config_text = std::move(c).value();
  }
  auto tokenizer = Tokenizer::FromJson(*json_text, config_text);
  if (!tokenizer.ok()) {
    std::cerr << tokenizer.status().ToString() << "\n";
    return 2;
  }
  std::string line;
  while (std::getline(std::cin, line)) {
    if (line.empty()) continue;
    const Json in = Json::parse(line, nullptr, /*allow_exceptions=*/false);
    Json out = Json::object();
    if (in.is_string()) {
      const std::vector<int32_t> ids = tokenizer->Encode(in.get<std::string>(), false);
      out["ids"] = ids;
      out["ids_special"] = tokenizer->Encode(in.get<std::string>(), true);
      out["decoded"] = tokenizer->Decode(ids, false);
      out["decoded_skip"] = tokenizer->Decode(ids, true);
      out["streamed"] = Streamed(*tokenizer, ids, false);
    } else if (in.is_array()) {
      std::vector<int32_t> ids;
      for (const Json& v : in) {
        if (!v.is_number_integer()) {
          std::cerr << "bad id in: " << line << "\n";
          return 1;
        }
        ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
      }
      out["decoded"] = tokenizer->Decode(ids, false);
      out["decoded_skip"] = tokenizer->Decode(ids, true);
      out["streamed"] = Streamed(*tokenizer, ids, false);
      out["streamed_skip"] = Streamed(*tokenizer, ids, true);
    } else {
      std::cerr << "expected a JSON string or array of ids: " << line << "\n";
      return 1;
    }
    std::cout << Dump(out) << "\n";
  }
  return 0;
}
