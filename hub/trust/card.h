// Model card (README.md) front matter → JSON, for the `cardData` of repo info.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

namespace hubnode::hub {

// The YAML between a leading `---` line and the next `---` line, as JSON (YAML types kept: plain
// true/false/null/numbers become JSON values, everything else strings). null when there is no
// front matter or it is not valid YAML (the trust issue reports that as a finding).
nlohmann::json CardDataFromReadme(std::string_view readme);

}  // namespace hubnode::hub
