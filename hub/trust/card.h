// Model card (README.md) front matter → JSON, for the `cardData` of repo info. The card is read
// by verify's one parser (verify/card.h: the Hub's block rule, limits, no aliases), so repo info
// and the license policy always read the same values.
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string_view>

namespace hubnode::hub {

// The most of a card's data repo info serves; a larger card is summarised by its license fields.
inline constexpr size_t kMaxCardDataBytes = 256 << 10;

// The front matter as JSON (YAML types kept: plain true/false/null/numbers become JSON values,
// everything else strings). null when there is no front matter, or it is not valid YAML or was
// refused (the trust report says why).
nlohmann::json CardDataFromReadme(std::string_view readme);

}  // namespace hubnode::hub
