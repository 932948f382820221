// HEAD/GET /{repo}/resolve/{rev}/{path} and /{repo}/raw/{rev}/{path}: file bodies streamed chunk by
// chunk from the store — or, during a pull-through fill, from the staging file as it arrives —
// with the headers the Hugging Face clients read.
#include <fcntl.h>
#include <unistd.h>

#include <memory>

#include "hub/read/handlers.h"

namespace hubnode::hub {
namespace {

constexpr size_t kPiece = 1 << 20;

std::string Quoted(const std::string& s) { return "\"" + s + "\""; }

std::string ContentType(const std::string& path) {
  auto ends = [&](std::string_view s) {
    return path.size() >= s.size() && path.compare(path.size() - s.size(), s.size(), s) == 0;
  };
  if (ends(".json")) return "application/json";
  if (ends(".md") || ends(".txt") || ends(".jinja") || ends(".py") || ends(".yaml") || ends(".yml")) {
    return "text/plain; charset=utf-8";
  }
  return "application/octet-stream";
}

// Sets the file headers and applies Range. Returns the byte range to send, or nullopt when an
// error answer (416) was sent. `size` is the size of what is served (the pointer, for /raw/ LFS).
std::optional<ByteRange> PrepareFileResponse(const store::FileEntry& f, bool pointer, uint64_t size,
                                             const httplib::Request& req, httplib::Response& res) {
  std::string etag = Quoted(f.lfs && !pointer ? f.sha256.hex() : f.blob.hex());
  res.set_header("ETag", etag);
  res.set_header("Accept-Ranges", "bytes");
  if (f.lfs && !pointer) {
    res.set_header("X-Linked-Size", std::to_string(f.size));
    res.set_header("X-Linked-Etag", etag);
  }
  std::string name = f.path.substr(f.path.rfind('/') + 1);
  res.set_header("Content-Disposition", "inline; filename=\"" + UrlEncode(name, false) + "\"");

  // We apply Range ourselves (single ranges, suffix and open ranges, 416 when unsatisfiable);
  // httplib's own range handling is cleared so it does not apply it a second time.
  std::string range_header = req.get_header_value("Range");
  const_cast<httplib::Request&>(req).ranges.clear();
  auto range = ParseRange(range_header, size);
  if (!range.ok()) {
    if (range.status().code() == StatusCode::kOutOfRange) {
      res.set_header("Content-Range", "bytes */" + std::to_string(size));
    }
    SendError(res, 416, "RangeNotSatisfiable", range.status().message());
    return std::nullopt;
  }
  if (!*range) return ByteRange{0, size};
  res.status = 206;
  res.set_header("Content-Range", "bytes " + std::to_string((*range)->offset) + "-" +
                                      std::to_string((*range)->offset + (*range)->length - 1) + "/" +
                                      std::to_string(size));
  return **range;
}

// Serves `length` bytes from `offset` of a stored file, one store chunk per provider call.
void StreamFromStore(std::shared_ptr<store::FileReader> reader, uint64_t offset, uint64_t length,
                     const std::string& content_type, Metrics* metrics, httplib::Response& res) {
  res.set_content_provider(
      length, content_type, [reader, offset, metrics](size_t at, size_t want, httplib::DataSink& sink) {
        bool ok = true;
        Status s = reader->Read(offset + at, std::min(want, kPiece), [&](std::string_view piece) {
          if (!sink.write(piece.data(), piece.size())) ok = false;
          metrics->AddBytes(piece.size());
          return ok ? OkStatus() : CancelledError("client went away");
        });
        // A failed read mid-body cannot change the status any more: cut the connection, so the
        // client sees a short body rather than wrong bytes.
        return s.ok() && ok;
      });
}

// Reads a file of a fill in progress from its staging file as the bytes arrive; once the fill has
// committed (and removed the staging folder), from the store.
struct FillStream {
  std::shared_ptr<Fill> fill;
  std::shared_ptr<FillFile> file;
  store::Store* store;
  int fd = -1;
  std::shared_ptr<store::FileReader> reader;
  ~FillStream() {
    if (fd >= 0) ::close(fd);
  }
  bool Send(uint64_t pos, size_t want, httplib::DataSink& sink, Metrics* metrics) {
    auto avail = file->WaitFor(pos);
    if (!avail.ok()) return false;
    size_t n = static_cast<size_t>(std::min<uint64_t>({want, *avail - pos, kPiece}));
    if (fd < 0 && !reader) {
      fd = ::open(file->staging_path.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        // Gone: the fill committed. Read the store instead.
        auto committed = fill->Wait();
        if (!committed.ok()) return false;
        auto entry = store->StatFile(committed->commit, file->file.path);
        if (!entry.ok()) return false;
        auto r = store->OpenFile(*entry);
        if (!r.ok()) return false;
        reader = std::move(*r);
      }
    }
    if (reader) {
      bool ok = true;
      Status s = reader->Read(pos, n, [&](std::string_view piece) {
        ok = ok && sink.write(piece.data(), piece.size());
        metrics->AddBytes(piece.size());
        return ok ? OkStatus() : CancelledError("client went away");
      });
      return s.ok() && ok;
    }
    std::string buf(n, '\0');
    ssize_t got = ::pread(fd, buf.data(), n, static_cast<off_t>(pos));
    if (got <= 0) return false;
    metrics->AddBytes(static_cast<size_t>(got));
    return sink.write(buf.data(), static_cast<size_t>(got));
  }
};

}  // namespace

void Handlers::ServeFromFill(const std::shared_ptr<Fill>& fill, const Route& r, const httplib::Request& req,
                             httplib::Response& res) {
  res.set_header("X-Repo-Commit", fill->planned_commit->hex());
  auto it = fill->files.find(r.path);
  if (it == fill->files.end()) return SendError(res, 404, "EntryNotFound", "Entry not found");
  const FillFile& ff = *it->second;
  store::FileEntry entry;
  entry.path = ff.file.path;
  entry.size = ff.file.size;
  entry.lfs = ff.stored_as_lfs;
  entry.sha256 = ff.file.sha256;
  entry.blob = ff.file.blob;
  std::string pointer_text;
  if (entry.lfs) {
    pointer_text = store::LfsPointerText(entry);
    Sha1 sha1;
    sha1.Update("blob " + std::to_string(pointer_text.size()) + std::string(1, '\0'));
    sha1.Update(pointer_text);
    entry.blob = sha1.Finish();
  }
  bool pointer = r.kind == RouteKind::kRaw && entry.lfs;
  uint64_t size = pointer ? pointer_text.size() : entry.size;
  auto range = PrepareFileResponse(entry, pointer, size, req, res);
  if (!range) return;
  if (pointer) return res.set_content(pointer_text.substr(range->offset, range->length), "text/plain; charset=utf-8");
  if (range->length == 0) return res.set_content("", ContentType(r.path));
  auto stream = std::make_shared<FillStream>();
  stream->fill = fill;
  stream->file = it->second;
  stream->store = store_;
  uint64_t offset = range->offset;
  Metrics* metrics = metrics_;
  res.set_content_provider(range->length, ContentType(r.path),
                           [stream, offset, metrics](size_t at, size_t want, httplib::DataSink& sink) {
                             return stream->Send(offset + at, want, sink, metrics);
                           });
}

void Handlers::File(const Route& r, const std::optional<Principal>& who, const httplib::Request& req,
                    httplib::Response& res) {
  // Pull-through: a revision this node does not hold is filled from the upstream; while the fill
  // runs, its files are answered from the plan and streamed as they arrive.
  if (mirror_ != nullptr && r.repo_type == "model") {
    auto id = store::RepoId::Parse(r.repo);
    std::string rev = r.rev.empty() || r.rev == "HEAD" ? "main" : r.rev;
    if (id.ok() && CanPullThrough(*id) && !Holds(*id, rev)) {
      std::shared_ptr<Fill> fill;
      if (auto oid = GitOid::FromHex(rev); rev.size() == 40 && IsLowerHex(rev) && oid.ok()) {
        fill = mirror_->FindByCommit(*id, *oid);
      }
      if (!fill) {
        auto begun = mirror_->Begin(*id, rev, PullOptions{});
        if (!begun.ok()) return SendPullError(*id, rev, begun.status(), !store_->GetRepo(*id).ok(), res);
        fill = *begun;
      }
      if (!fill->done() && fill->planned_commit && fill->stream_ok && !fill->upstream_private &&
          !fill->upstream_gated) {
        return ServeFromFill(fill, r, req, res);
      }
      auto filled = fill->Wait();
      if (!filled.ok()) return SendPullError(*id, rev, filled.status(), !store_->GetRepo(*id).ok(), res);
    }
  }

  auto repo = OpenRepo(r, who, res);
  if (!repo) return;
  if (repo->visibility == store::Visibility::kGated && !CanRead(who, *repo)) {
    return SendError(res, 403, "GatedRepo", "Access to model " + repo->id.str() + " is restricted.");
  }
  auto commit = ResolveRev(*repo, r.rev, who, res);
  if (!commit) return;
  res.set_header("X-Repo-Commit", commit->hex());
  // A revision committed under one policy may be denied by today's (a policy changed, a key
  // revoked, a base relicensed): it is not served.
  if (auto denied = DeniedNow(*repo, *commit, who)) {
    return SendError(res, 451, "PolicyRefused", "This node's policy does not allow serving this revision: " + *denied);
  }
  auto file = store_->StatFile(*commit, r.path);
  if (!file.ok()) {
    if (file.status().code() == StatusCode::kInvalidArgument) return SendStatus(res, file.status());
    return SendError(res, 404, "EntryNotFound", "Entry not found");
  }
  bool pointer = r.kind == RouteKind::kRaw && file->lfs;  // /raw/ serves the git blob: the LFS pointer
  std::string pointer_text = pointer ? store::LfsPointerText(*file) : "";
  uint64_t size = pointer ? pointer_text.size() : file->size;
  auto range = PrepareFileResponse(*file, pointer, size, req, res);
  if (!range) return;
  if (pointer) return res.set_content(pointer_text.substr(range->offset, range->length), "text/plain; charset=utf-8");
  if (range->length == 0) return res.set_content("", ContentType(r.path));
  // A hot file: plain reads of its raw copy (page cache), no chunk reads or decompression.
  if (raw_cache_ && file->lfs) {
    if (auto entry = raw_cache_->Open(file->sha256, file->size)) {
      auto buf = std::make_shared<std::string>();
      uint64_t offset = range->offset;
      Metrics* metrics = metrics_;
      res.set_content_provider(range->length, ContentType(r.path),
                               [entry, buf, offset, metrics](size_t at, size_t want, httplib::DataSink& sink) {
                                 size_t n = std::min(want, kPiece);
                                 buf->resize(n);
                                 ssize_t got = ::pread(entry->fd, buf->data(), n, static_cast<off_t>(offset + at));
                                 if (got <= 0) return false;
                                 metrics->AddBytes(static_cast<size_t>(got));
                                 return sink.write(buf->data(), static_cast<size_t>(got));
                               });
      return;
    }
    if (req.method != "HEAD") raw_cache_->Fill(*file);
  }
  auto reader = store_->OpenFile(*file);
  if (!reader.ok()) return SendStatus(res, reader.status());
  // A partly held file: its first missing chunk in the range is fetched before the answer starts,
  // so peers that cannot provide it give a clean 503 (retry later), not a cut body. Later missing
  // chunks are fetched as the stream reaches them. The range's first chunk is read first too: with
  // the chunk tier it may be in the object store, which may be down (the reader keeps the chunk,
  // so the stream does not read it again).
  if (req.method != "HEAD" && file->lfs && range->length > 0) {
    auto missing = FirstMissingChunk(*file, range->offset, range->length);
    Status s = (*reader)->Read(missing ? *missing : range->offset, 1, [](std::string_view) { return OkStatus(); });
    if (!s.ok()) {
      res.set_header("Retry-After", "30");
      return SendError(res, s.code() == StatusCode::kUnavailable ? 503 : 500, "ChunksUnavailable",
                       "part of " + r.path + " is not on this node and no peer or object store could provide it now: " +
                           s.message());
    }
  }
  StreamFromStore(std::shared_ptr<store::FileReader>(std::move(*reader)), range->offset, range->length,
                  ContentType(r.path), metrics_, res);
}

std::optional<uint64_t> Handlers::FirstMissingChunk(const store::FileEntry& f, uint64_t offset, uint64_t length) {
  auto chunks = store_->ListChunks(f);
  if (!chunks.ok()) return std::nullopt;
  std::vector<ChunkId> ids;
  std::vector<uint64_t> at;
  for (const auto& c : *chunks) {
    if (c.offset + c.size <= offset || c.offset >= offset + length) continue;
    ids.push_back(c.id);
    at.push_back(std::max(c.offset, offset));
  }
  auto held = store_->HasChunks(ids);
  if (!held.ok()) return std::nullopt;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (!(*held)[i]) return at[i];
  }
  return std::nullopt;
}

}  // namespace hubnode::hub
