// Identifying a LICENSE text: normalised word shingles against reference fingerprints derived at
// run time from the texts Debian ships, and title patterns for licenses Debian does not ship.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "verify/license.h"

namespace hubnode::verify {
namespace {

constexpr size_t kShingle = 5;

uint64_t Fnv1a(const std::vector<std::string>& words, size_t from, size_t n) {
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = from; i < from + n; ++i) {
    for (char c : words[i]) h = (h ^ static_cast<uint8_t>(c)) * 1099511628211ULL;
    h = (h ^ ' ') * 1099511628211ULL;
  }
  return h;
}

std::vector<uint64_t> Shingles(const std::vector<std::string>& w) {
  std::vector<uint64_t> out;
  for (size_t i = 0; i + kShingle <= w.size(); ++i) out.push_back(Fnv1a(w, i, kShingle));
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

// Debian's /usr/share/common-licenses file → SPDX id.
const std::pair<const char*, const char*> kDebianFiles[] = {
    {"Apache-2.0", "Apache-2.0"}, {"GPL-2", "GPL-2.0-only"},     {"GPL-3", "GPL-3.0-only"},
    {"LGPL-2.1", "LGPL-2.1-only"}, {"LGPL-3", "LGPL-3.0-only"}, {"MPL-2.0", "MPL-2.0"},
    {"MPL-1.1", "MPL-1.1"},       {"CC0-1.0", "CC0-1.0"},       {"BSD", "BSD-3-Clause"},
    {"Artistic", "Artistic-1.0-Perl"}, {"GFDL-1.3", "GFDL-1.3-only"},
};

// Title or defining phrases (written as they read after normalisation), most specific first.
const std::pair<const char*, const char*> kTitles[] = {
    {"tongyi qianwen research license agreement", "LicenseRef-tongyi-qianwen-research"},
    {"tongyi qianwen license agreement", "LicenseRef-tongyi-qianwen"},
    {"llama 4 community license agreement", "LicenseRef-llama4"},
    {"llama 3 3 community license agreement", "LicenseRef-llama3.3"},
    {"llama 3 2 community license agreement", "LicenseRef-llama3.2"},
    {"llama 3 1 community license agreement", "LicenseRef-llama3.1"},
    {"meta llama 3 community license agreement", "LicenseRef-llama3"},
    {"llama 2 community license agreement", "LicenseRef-llama2"},
    {"gemma terms of use", "LicenseRef-gemma"},
    {"deepseek license agreement", "LicenseRef-deepseek"},
    {"databricks open model license", "LicenseRef-databricks-open-model-license"},
    {"attribution noncommercial noderivatives 4 0 international", "CC-BY-NC-ND-4.0"},
    {"attribution noncommercial sharealike 4 0 international", "CC-BY-NC-SA-4.0"},
    {"attribution noncommercial 4 0 international", "CC-BY-NC-4.0"},
    {"attribution noderivatives 4 0 international", "CC-BY-ND-4.0"},
    {"attribution sharealike 4 0 international", "CC-BY-SA-4.0"},
    {"creative commons attribution 4 0 international public license", "CC-BY-4.0"},
    {"responsible ai license", "LicenseRef-openrail"},
    {"permission is hereby granted free of charge to any person obtaining a copy", "MIT"},
};

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

}  // namespace

std::vector<std::string> NormalizedWords(std::string_view text) {
  std::vector<std::string> words;
  std::string line, lowered;
  size_t start = 0;
  while (start <= text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string_view::npos) nl = text.size();
    lowered.assign(text.substr(start, nl - start));
    start = nl + 1;
    for (char& c : lowered) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    // Copyright lines name the holder, not the license.
    size_t first = lowered.find_first_not_of(" \t");
    if (first != std::string::npos &&
        (lowered.compare(first, 10, "copyright ") == 0 || lowered.find("copyright (c)") != std::string::npos)) {
      continue;
    }
    std::string word;
    auto flush = [&] {
      if (word.empty()) return;
      if (word == "licence") word = "license";
      if (word == "licences") word = "licenses";
      if (word == "licenced") word = "licensed";
      if (word == "http") word = "https";
      words.push_back(word);
      word.clear();
    };
    for (size_t i = 0; i < lowered.size(); ++i) {
      char c = lowered[i];
      if (std::isalnum(static_cast<unsigned char>(c))) {
        word.push_back(c);
      } else if (c == '-' && !word.empty() && i + 1 < lowered.size() &&
                 std::isalpha(static_cast<unsigned char>(lowered[i + 1]))) {
        // "non-commercial" and "noncommercial" are the same word.
      } else if (c == '&') {
        flush();
        words.push_back("and");
      } else {
        flush();
      }
    }
    flush();
  }
  return words;
}

LicenseMatcher LicenseMatcher::FromDirectory(const std::string& dir) {
  LicenseMatcher m;
  for (const auto& [file, id] : kDebianFiles) {
    std::string path = dir + "/" + file;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path, ec)) continue;
    auto shingles = Shingles(NormalizedWords(ReadAll(path)));
    if (!shingles.empty()) m.refs_.push_back(Ref{id, std::move(shingles)});
  }
  return m;
}

TextMatch LicenseMatcher::Identify(std::string_view text) const {
  TextMatch best;
  std::vector<std::string> words = NormalizedWords(text);
  std::vector<uint64_t> doc = Shingles(words);
  for (const auto& r : refs_) {
    std::vector<uint64_t> common;
    std::set_intersection(r.shingles.begin(), r.shingles.end(), doc.begin(), doc.end(), std::back_inserter(common));
    double score = static_cast<double>(common.size()) / static_cast<double>(r.shingles.size());
    // Between near-equal scores prefer the larger reference (the LGPL mentions the GPL, never the
    // other way round).
    if (score > best.score + 1e-9) best = TextMatch{r.id, score, "fingerprint"};
  }
  if (best.score >= 0.8) return best;
  std::string joined;
  for (size_t i = 0; i < words.size() && i < 400; ++i) joined += words[i] + " ";
  for (const auto& [phrase, id] : kTitles) {
    if (joined.find(phrase) != std::string::npos) return TextMatch{id, 0.9, "title"};
  }
  return best.score >= 0.5 ? best : TextMatch{};
}

}  // namespace hubnode::verify
