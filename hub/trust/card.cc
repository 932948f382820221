#include "hub/trust/card.h"

#include "verify/verify.h"

namespace hubnode::hub {

nlohmann::json CardDataFromReadme(std::string_view readme) {
  verify::CardFrontMatter fm = verify::ParseCardFrontMatter(readme);
  if (!fm.data.is_object()) return nullptr;
  // What repo info serves of a card is bounded too: a large card (within the parser's limits) is
  // summarised by its license fields alone.
  if (fm.data.dump().size() > kMaxCardDataBytes) {
    nlohmann::json small = nlohmann::json::object();
    for (const char* key : {"license", "license_name", "license_link", "base_model", "base_model_relation"}) {
      if (fm.data.contains(key) && fm.data[key].dump().size() < 4096) small[key] = fm.data[key];
    }
    return small;
  }
  return std::move(fm.data);
}

}  // namespace hubnode::hub
