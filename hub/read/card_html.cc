#include "hub/read/card_html.h"

#include <cmark-gfm-core-extensions.h>
#include <cmark-gfm.h>

#include <memory>
#include <mutex>

#include "base/hex.h"

namespace hubnode::hub {

std::string_view CardBody(std::string_view readme) {
  auto line_end = [&](size_t from) {
    size_t nl = readme.find('\n', from);
    return nl == std::string_view::npos ? readme.size() : nl;
  };
  auto line = [&](size_t from, size_t end) {
    std::string_view l = readme.substr(from, end - from);
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    return l;
  };
  size_t end = line_end(0);
  if (line(0, end) != "---") return readme;
  for (size_t at = end + 1; at < readme.size();) {
    size_t e = line_end(at);
    if (line(at, e) == "---") return e >= readme.size() ? std::string_view() : readme.substr(e + 1);
    at = e + 1;
  }
  return readme;  // never closed: not front matter
}

namespace {

bool IsRelative(std::string_view url) {
  if (url.empty() || url[0] == '/' || url[0] == '\\' || url[0] == '#') return false;
  // A scheme is letters, digits, + - . before the first ':' that comes before any '/'.
  size_t colon = url.find(':'), slash = url.find('/');
  return colon == std::string_view::npos || (slash != std::string_view::npos && slash < colon);
}

}  // namespace

Result<std::string> RenderCardHtml(std::string_view readme, const std::string& file_base) {
  if (readme.size() > kMaxCardBytes) return InvalidArgumentError("the card is larger than 1 MiB");
  static std::once_flag once;
  std::call_once(once, [] { cmark_gfm_core_extensions_ensure_registered(); });
  const int options = CMARK_OPT_DEFAULT;  // safe: no raw HTML, no dangerous URLs
  std::unique_ptr<cmark_parser, void (*)(cmark_parser*)> parser(cmark_parser_new(options), &cmark_parser_free);
  for (const char* name : {"table", "strikethrough", "autolink", "tagfilter", "tasklist"}) {
    if (cmark_syntax_extension* ext = cmark_find_syntax_extension(name)) {
      cmark_parser_attach_syntax_extension(parser.get(), ext);
    }
  }
  std::string_view body = CardBody(readme);
  cmark_parser_feed(parser.get(), body.data(), body.size());
  std::unique_ptr<cmark_node, void (*)(cmark_node*)> doc(cmark_parser_finish(parser.get()), &cmark_node_free);
  if (!doc) return InternalError("the card did not parse");
  // Images only from the node.
  std::unique_ptr<cmark_iter, void (*)(cmark_iter*)> it(cmark_iter_new(doc.get()), &cmark_iter_free);
  for (cmark_event_type ev; (ev = cmark_iter_next(it.get())) != CMARK_EVENT_DONE;) {
    cmark_node* node = cmark_iter_get_node(it.get());
    if (ev != CMARK_EVENT_ENTER || cmark_node_get_type(node) != CMARK_NODE_IMAGE) continue;
    const char* url = cmark_node_get_url(node);
    std::string_view u = url ? url : "";
    while (u.starts_with("./")) u.remove_prefix(2);
    if (IsRelative(u) && u.find("..") == std::string_view::npos) {
      std::string to = file_base + "/" + UrlEncode(std::string(u), true);
      cmark_node_set_url(node, to.c_str());
    } else {
      cmark_node_set_url(node, "");
    }
  }
  char* html = cmark_render_html(doc.get(), options, cmark_parser_get_syntax_extensions(parser.get()));
  if (!html) return InternalError("the card did not render");
  std::string out(html);
  cmark_get_default_mem_allocator()->free(html);
  return out;
}

}  // namespace hubnode::hub
