// The model card (README.md with YAML front matter) and the LICENSE file, whose text is read at
// generation time from Debian's /usr/share/common-licenses so no license text lives in source.
//
// Thread safety: pure functions (LicenseText reads a file).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "testmodel/spec.h"

namespace hubnode::testmodel {

// InvalidArgument unless id is non-empty lowercase letters, digits, '.', '-' (at most 64).
Status ValidateLicenseId(std::string_view id);
// InvalidArgument unless tag is printable ASCII without ':', '#', quotes, commas or brackets.
Status ValidateTag(std::string_view tag);
// InvalidArgument unless id is printable ASCII without spaces (at most 200).
Status ValidateModelId(std::string_view id);

// The license's text, or nullopt when the id has no known file (or the file is not installed).
// Other read errors are returned.
Result<std::optional<std::string>> LicenseText(std::string_view license_id);

struct CardFacts {
  const ModelSpec* spec = nullptr;
  std::string license;
  std::vector<std::string> extra_tags;
  uint64_t seed = 0;
  uint64_t parameters = 0;
  uint64_t tensor_bytes = 0;
  int vocab_size = 0;
};

// README.md of a generated model.
std::string ModelCard(const CardFacts& facts);

// Rewrites a card's front matter for a fine-tune: sets base_model (replacing any) and, when
// given, license; appends `note` as a paragraph to the body. InvalidArgument when `card` has no
// front matter.
Result<std::string> FinetuneCard(std::string_view card, std::string_view base_model_id,
                                 const std::optional<std::string>& license, std::string_view note);

// The card's front-matter license, or InvalidArgument when there is none.
Result<std::string> CardLicense(std::string_view card);

}  // namespace hubnode::testmodel
