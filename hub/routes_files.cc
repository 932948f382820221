// HEAD/GET /{repo}/resolve/{rev}/{path} and /{repo}/raw/{rev}/{path}: file bodies streamed chunk by
// chunk from the store, with the headers the Hugging Face clients read.
#include <memory>

#include "hub/handlers.h"

namespace hubnode::hub {
namespace {

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string ContentType(const std::string& path) {
  auto ends = [&](std::string_view s) { return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0; };
  if (ends(".json")) return "application/json";
  if (ends(".md") || ends(".txt") || ends(".jinja") || ends(".py") || ends(".yaml") || ends(".yml")) {
    return "text/plain; charset=utf-8";
  }
  return "application/octet-stream";
}

// Serves `length` bytes from `offset` of a file, one store chunk per provider call.
void StreamBody(std::shared_ptr<store::FileReader> reader, uint64_t offset, uint64_t length,
                const std::string& content_type, Metrics* metrics, httplib::Response& res) {
  res.set_content_provider(
      length, content_type, [reader, offset, metrics](size_t at, size_t want, httplib::DataSink& sink) {
        constexpr size_t kPiece = 1 << 20;
        bool ok = true;
        size_t n = std::min(want, kPiece);
        Status s = reader->Read(offset + at, n, [&](std::string_view piece) {
          if (!sink.write(piece.data(), piece.size())) ok = false;
          metrics->AddBytes(piece.size());
          return ok ? OkStatus() : CancelledError("client went away");
        });
        // A failed read mid-body cannot change the status any more: cut the connection, so the
        // client sees a short body rather than wrong bytes.
        return s.ok() && ok;
      });
}

}  // namespace

void Handlers::File(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                    httplib::Response& res) {
  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  if (repo->visibility == store::Visibility::kGated && !CanRead(who, *repo)) {
    return SendError(res, 403, "GatedRepo", "Access to model " + repo->id.str() + " is restricted.");
  }
  auto commit = ResolveRev(*repo, r.rev, res);
  if (!commit) return;
  res.set_header("X-Repo-Commit", commit->hex());
  auto file = store_->StatFile(*commit, r.path);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kInvalidArgument) return SendStatus(res, file.status());
    return SendError(res, 404, "EntryNotFound", "Entry not found");
  }
  bool pointer = r.kind == RouteKind::kRaw && file->lfs;  // /raw/ serves the git blob: the LFS pointer
  uint64_t size = pointer ? file->pointer_size : file->size;
  std::string etag = Quoted(file->lfs && !pointer ? file->sha256.hex() : file->blob.hex());
  res.set_header("ETag", etag);
  res.set_header("Accept-Ranges", "bytes");
  if (file->lfs && !pointer) {
    res.set_header("X-Linked-Size", std::to_string(file->size));
    res.set_header("X-Linked-Etag", etag);
  }
  std::string name = r.path.substr(r.path.rfind('/') + 1);
  res.set_header("Content-Disposition", "inline; filename=\"" + UrlEncode(name, false) + "\"");

  // We apply Range ourselves (single ranges, suffix and open ranges, 416 when unsatisfiable);
  // httplib's own range handling is cleared so it does not apply it a second time.
  std::string range_header = req.get_header_value("Range");
  const_cast<httplib::Request&>(req).ranges.clear();
  auto range = ParseRange(range_header, size);
  if (!range.ok()) {
    if (range.status().code() == StatusCode::kOutOfRange) res.set_header("Content-Range", "bytes */" + std::to_string(size));
    return SendError(res, 416, "RangeNotSatisfiable", range.status().message());
  }
  uint64_t offset = 0, length = size;
  if (*range) {
    offset = (*range)->offset;
    length = (*range)->length;
    res.status = 206;
    res.set_header("Content-Range", "bytes " + std::to_string(offset) + "-" + std::to_string(offset + length - 1) + "/" +
                                        std::to_string(size));
  }
  if (pointer) {
    std::string text = store::LfsPointerText(*file);
    res.set_content(text.substr(offset, length), "text/plain; charset=utf-8");
    return;
  }
  if (length == 0) {
    res.set_content("", ContentType(r.path));
    return;
  }
  auto reader = store_->OpenFile(*file);
  if (!reader.ok()) return SendStatus(res, reader.status());
  StreamBody(std::shared_ptr<store::FileReader>(std::move(*reader)), offset, length, ContentType(r.path), metrics_,
             res);
}

}  // namespace hubnode::hub
