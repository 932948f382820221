// A model card (README.md) rendered to HTML for the web UI, safely: GitHub-flavoured markdown by
// GitHub's own renderer (cmark-gfm: tables, strikethrough, autolinks, task lists, the tag
// filter) in its safe mode — raw HTML is omitted and javascript:, vbscript:, file: and data:
// links are dropped — and images only from the node: a relative image path becomes the repo's
// file at the revision, any other image source is removed (its alt text stays). The YAML front
// matter is not rendered (the UI shows its facts). The page's Content-Security-Policy
// (hub/web) is the second fence.
#pragma once

#include <string>
#include <string_view>

#include "base/status.h"

namespace hubnode::hub {

inline constexpr size_t kMaxCardBytes = 1 << 20;

// `file_base` is the URL prefix relative image paths resolve under (/{repo}/resolve/{sha}).
// InvalidArgument above kMaxCardBytes.
Result<std::string> RenderCardHtml(std::string_view readme, const std::string& file_base);

// The card without its YAML front matter (the Hub's rule: a first line "---" opens it, the next
// line that is exactly "---" closes it).
std::string_view CardBody(std::string_view readme);

}  // namespace hubnode::hub
