#include "testmodel/card.h"

#include <algorithm>
#include <cstdio>

#include "base/file.h"

namespace hubnode::testmodel {
namespace {

constexpr std::string_view kLicenseDir = "/usr/share/common-licenses/";

struct LicenseFile {
  std::string_view id;
  std::string_view file;
};
constexpr LicenseFile kLicenseFiles[] = {
    {"apache-2.0", "Apache-2.0"}, {"gpl-3.0", "GPL-3"},     {"gpl-2.0", "GPL-2"},
    {"lgpl-3.0", "LGPL-3"},       {"lgpl-2.1", "LGPL-2.1"}, {"mpl-2.0", "MPL-2.0"},
    {"cc0-1.0", "CC0-1.0"},       {"bsd-3-clause", "BSD"},  {"artistic-2.0", "Artistic"},
};

std::string WithCommas(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string_view TorchDTypeName(DType d) {
  switch (d) {
    case DType::kBF16:
      return "bfloat16";
    case DType::kF16:
      return "float16";
    case DType::kF32:
      return "float32";
    case DType::kF8E4M3:
      return "float8_e4m3fn (128 x 128 block scales)";
  }
  return "";
}

// The front matter's lines and the body after the closing "---" line.
struct SplitCard {
  std::vector<std::string> lines;
  std::string body;
};

Result<SplitCard> Split(std::string_view card) {
  if (!card.starts_with("---\n")) return InvalidArgumentError("model card has no front matter");
  const size_t close = card.find("\n---\n", 3);
  if (close == std::string_view::npos) {
    return InvalidArgumentError("model card front matter is not closed");
  }
  SplitCard out;
  std::string_view fm = card.substr(4, close - 3);  // through the final '\n'
  while (!fm.empty()) {
    const size_t nl = fm.find('\n');
    out.lines.emplace_back(fm.substr(0, nl));
    fm.remove_prefix(nl == std::string_view::npos ? fm.size() : nl + 1);
  }
  out.body = std::string(card.substr(close + 5));
  return out;
}

}  // namespace

Status ValidateLicenseId(std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
  });
  if (!ok) return InvalidArgumentError("bad license id \"" + std::string(id) + "\"");
  return OkStatus();
}

Status ValidateTag(std::string_view tag) {
  const bool ok =
      !tag.empty() && tag.size() <= 100 && std::all_of(tag.begin(), tag.end(), [](char c) {
        return c > ' ' && c < 0x7F &&
               std::string_view(":#'\",[]{}").find(c) == std::string_view::npos;
      });
  if (!ok) return InvalidArgumentError("bad tag \"" + std::string(tag) + "\"");
  return OkStatus();
}

Status ValidateModelId(std::string_view id) {
  const bool ok = !id.empty() && id.size() <= 200 &&
                  std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c < 0x7F; });
  if (!ok) return InvalidArgumentError("bad base model id \"" + std::string(id) + "\"");
  return OkStatus();
}

Result<std::optional<std::string>> LicenseText(std::string_view license_id) {
  for (const LicenseFile& lf : kLicenseFiles) {
    if (lf.id != license_id) continue;
    auto text = ReadFileToString(std::string(kLicenseDir) + std::string(lf.file), 1 << 20);
    if (!text.ok() && text.status().code() == StatusCode::kNotFound) {
      return std::optional<std::string>();
    }
    if (!text.ok()) return text.status();
    return std::optional<std::string>(std::move(*text));
  }
  return std::optional<std::string>();
}

std::string ModelCard(const CardFacts& f) {
  const ModelSpec& s = *f.spec;
  const std::string family(FamilyName(s.family));
  std::string out =
      "---\nlicense: " + f.license + "\ntags:\n- hubnode-testmodel\n- " + family + "\n";
  if (IsMoe(s.family)) out += "- moe\n";
  for (const std::string& tag : f.extra_tags) out += "- " + tag + "\n";
  out += "library_name: transformers\npipeline_tag: text-generation\n---\n\n";
  out += "# Test model: " + family + " (" + s.size + ")\n\n";
  out += "A randomly initialised `" + std::string(ArchitectureName(s.family)) +
         "` checkpoint written by hubnode's test-model generator from seed " +
         std::to_string(f.seed) + ". Its files, tensor names and shapes are those of a real " +
         family +
         " checkpoint, but its weights are noise (normal, standard deviation 0.02): use it to "
         "test loading, storage and serving, never for what it says.\n\n";
  out += "| Property | Value |\n|---|---|\n";
  auto row = [&out](std::string_view k, const std::string& v) {
    out += "| " + std::string(k) + " | " + v + " |\n";
  };
  row("parameters", WithCommas(f.parameters));
  row("tensor bytes", WithCommas(f.tensor_bytes));
  row("dtype", std::string(TorchDTypeName(s.dtype)));
  row("hidden size", std::to_string(s.hidden));
  row("layers", std::to_string(s.layers));
  row("attention heads", std::to_string(s.heads) + " (" + std::to_string(s.kv_heads) +
                             " key/value, head_dim " + std::to_string(s.head_dim) + ")");
  if (IsMoe(s.family)) {
    row("experts", std::to_string(s.experts) + ", top-" + std::to_string(s.top_k) + ", width " +
                       std::to_string(s.moe_intermediate));
  }
  if (!IsMoe(s.family) || s.family == Family::kQwen2Moe || !s.mlp_only_layers.empty()) {
    row("dense MLP width", std::to_string(s.intermediate));
  }
  row("vocabulary", std::to_string(f.vocab_size) + " (byte-level BPE, " + std::to_string(s.merges) +
                        " merges at most)");
  row("shards", std::to_string(s.shards));
  return out;
}

Result<std::string> FinetuneCard(std::string_view card, std::string_view base_model_id,
                                 const std::optional<std::string>& license, std::string_view note) {
  ASSIGN_OR_RETURN(SplitCard split, Split(card));
  std::vector<std::string> lines;
  bool placed = false;
  for (const std::string& line : split.lines) {
    if (line.starts_with("base_model:")) continue;
    if (line.starts_with("license:")) {
      lines.push_back(license ? "license: " + *license : line);
      lines.push_back("base_model: " + std::string(base_model_id));
      placed = true;
      continue;
    }
    lines.push_back(line);
  }
  if (!placed) lines.insert(lines.begin(), "base_model: " + std::string(base_model_id));
  std::string out = "---\n";
  for (const std::string& line : lines) out += line + "\n";
  out += "---\n" + split.body;
  if (!out.ends_with("\n")) out += "\n";
  out += "\n" + std::string(note) + "\n";
  return out;
}

Result<std::string> CardLicense(std::string_view card) {
  ASSIGN_OR_RETURN(SplitCard split, Split(card));
  for (const std::string& line : split.lines) {
    if (line.starts_with("license:")) {
      std::string id = line.substr(8);
      id.erase(0, id.find_first_not_of(' '));
      RETURN_IF_ERROR(ValidateLicenseId(id));
      return id;
    }
  }
  return InvalidArgumentError("model card has no license");
}

}  // namespace hubnode::testmodel
