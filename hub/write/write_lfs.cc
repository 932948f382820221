// The LFS half of the write API: the batch API, signed upload URLs, uploads streamed into the
// store, multipart sessions. See write_api_impl.h.

#include <openssl/crypto.h>

#include <algorithm>
#include <charconv>
#include <ctime>

#include "base/file.h"
#include "base/log.h"
#include "hub/write/write_api_impl.h"

namespace hubnode::hub {

using namespace wapi;

std::string WriteApi::Impl::Signature(const char* what, const std::string& oid, const Signed& s, int64_t exp) const {
  return HmacHex(options.url_key, std::string(what) + "\n" + s.repo + "\n" + oid + "\n" + std::to_string(s.size) +
                                      "\n" + std::to_string(s.chunk) + "\n" + std::to_string(exp) + "\n" +
                                      std::to_string(s.part) + "\n" + s.uploader);
}

std::string WriteApi::Impl::UploadKey(const std::string& oid, const Signed& sg) const {
  return Sha256Of("upload\n" + sg.repo + "\n" + sg.uploader + "\n" + oid + "\n" + std::to_string(sg.size) + "\n" +
                  std::to_string(sg.chunk))
      .hex();
}

std::string WriteApi::Impl::SignUrl(const std::string& base, const char* what, const std::string& oid, const Signed& s,
                    int64_t exp) const {
  std::string url = base + "/api/lfs/" + what + "/" + oid + "?repo=" + UrlEncode(s.repo, false) +
                    "&size=" + std::to_string(s.size) + "&chunk=" + std::to_string(s.chunk) +
                    "&exp=" + std::to_string(exp) + "&by=" + UrlEncode(s.uploader, false) +
                    "&sig=" + Signature(what, oid, s, exp);
  if (s.part > 0) url += "&part=" + std::to_string(s.part);
  return url;
}

std::optional<WriteApi::Impl::Signed> WriteApi::Impl::CheckSigned(const httplib::Request& req, const char* what, const std::string& oid,
                                  httplib::Response& res) {
  Signed s;
  uint64_t exp = 0, part = 0;
  s.repo = req.get_param_value("repo");
  s.uploader = req.get_param_value("by");
  if (!ParseU64(req.get_param_value("size"), &s.size) || !ParseU64(req.get_param_value("chunk"), &s.chunk) ||
      !ParseU64(req.get_param_value("exp"), &exp) ||
      (req.has_param("part") && (!ParseU64(req.get_param_value("part"), &part) || part > kMaxParts))) {
    SendError(res, 403, "InvalidSignature", "malformed upload URL");
    return std::nullopt;
  }
  s.part = static_cast<int>(part);
  s.exp = static_cast<int64_t>(exp);
  std::string want = Signature(what, oid, s, static_cast<int64_t>(exp));
  std::string sig = req.get_param_value("sig");
  if (sig.size() != want.size() || CRYPTO_memcmp(sig.data(), want.data(), want.size()) != 0) {
    SendError(res, 403, "InvalidSignature", "the upload URL's signature does not match");
    return std::nullopt;
  }
  if (static_cast<int64_t>(exp) < static_cast<int64_t>(std::time(nullptr))) {
    SendError(res, 403, "ExpiredSignature", "the upload URL has expired; ask the batch API for a new one");
    return std::nullopt;
  }
  if (s.chunk == 0) {
    SendError(res, 403, "InvalidSignature", "malformed upload URL");
    return std::nullopt;
  }
  return s;
}

std::optional<std::pair<Sha256Digest, WriteApi::Impl::Signed>> WriteApi::Impl::SignedTarget(const WRoute& r, const httplib::Request& req,
                                                            const char* what, httplib::Response& res) {
  auto digest = Sha256Digest::FromHex(r.rest);
  if (!digest.ok()) {
    SendError(res, 404, "NotFound", "no such upload");
    return std::nullopt;
  }
  auto sg = CheckSigned(req, what, r.rest, res);
  if (!sg) return std::nullopt;
  return std::make_pair(*digest, *sg);
}

std::set<Sha256Digest> WriteApi::Impl::RepoObjects(const store::RepoId& repo) {
  std::set<Sha256Digest> out;
  auto refs = store->ListRefs(repo);
  if (!refs.ok()) return out;
  for (const auto& rf : *refs) {
    if (rf.name.starts_with("refs/held/")) continue;
    auto files = store->ListFiles(rf.commit);
    if (!files.ok()) continue;
    for (const auto& f : *files) {
      if (f.lfs) out.insert(f.sha256);
    }
  }
  return out;
}

void WriteApi::Impl::RecordUpload(const std::string& repo, const Sha256Digest& oid) {
  std::lock_guard<std::mutex> lock(stats_mu);
  auto key = std::make_pair(repo, oid);
  if (uploaded.insert(key).second) uploaded_order.push_back(key);
  while (uploaded_order.size() > kMaxUploadStats) {
    uploaded.erase(uploaded_order.front());
    uploaded_order.pop_front();
  }
}

bool WriteApi::Impl::Uploaded(const std::string& repo, const Sha256Digest& oid) {
  std::lock_guard<std::mutex> lock(stats_mu);
  return uploaded.count(std::make_pair(repo, oid)) > 0;
}

void WriteApi::Impl::LfsBatch(const WRoute& r, const httplib::Request& req, httplib::Response& res,
              const httplib::ContentReader& reader, const std::optional<Principal>& who) {
  // Contributors upload the objects of their pull requests too (the JS client names no ref for
  // them); bytes alone move no ref, the commit decides.
  auto body = JsonBody(reader, res);
  if (!body) return;
  const std::string operation = Str(*body, "operation");
  if (operation == "download") return LfsDownloadBatch(r, req, res, *body, who);
  if (operation != "upload") return SendError(res, 400, "BadRequest", "operation must be upload or download");
  if (options.reader_node && !options.writer_url.empty() && !req.has_header("Authorization")) {
    SendError(res, 307, "ReaderNode", "this node serves the chunks of a writer node; upload to " + options.writer_url);
    res.set_header("Location", options.writer_url + req.target);
    return;
  }
  if (options.reader_node) {
    return SendError(res, 403, "ReaderNode",
                     "this node serves the chunks of a writer node and takes no uploads: send them to " +
                         (options.writer_url.empty() ? std::string("the writer") : options.writer_url));
  }
  if (!who) {
    // git-lfs retries with the credentials git's helper gives once it is challenged.
    GitAuthChallenge(res);
    return SendError(res, 401, "Unauthorized", "uploads need a write token");
  }
  bool writer = false;
  auto repo = ContributableRepo(r, who, &writer, res);
  if (!repo) return;
  if (!body->contains("objects") || !(*body)["objects"].is_array() ||
      (*body)["objects"].size() > kMaxBatchObjects) {
    return SendError(res, 400, "BadRequest", "objects must be an array of at most " +
                                                 std::to_string(kMaxBatchObjects));
  }
  bool multipart_ok = false;
  if (body->contains("transfers") && (*body)["transfers"].is_array()) {
    for (const auto& t : (*body)["transfers"]) multipart_ok |= t == "multipart";
  }
  std::string base = Base(req);
  int64_t exp = static_cast<int64_t>(std::time(nullptr)) + options.url_lifetime_s;
  json objects = json::array();
  bool any_multipart = false;
  uint64_t part_urls = 0;
  // As on the Hub, "already stored" means stored for this repo: an object held only for other
  // repos must be uploaded (its bytes are hashed, so the uploader proves it has them; the store
  // still keeps its chunks once).
  const std::set<Sha256Digest> own = RepoObjects(repo->id);
  for (const auto& o : (*body)["objects"]) {
    std::string oid = o.is_object() ? Str(o, "oid") : "";
    auto digest = Sha256Digest::FromHex(oid);
    if (!digest.ok() || !o.contains("size") || !o["size"].is_number_unsigned()) {
      return SendError(res, 422, "BadRequest", "each object needs a 64-hex sha256 oid and a size");
    }
    uint64_t size = o["size"].get<uint64_t>();
    json e = {{"oid", oid}, {"size", size}, {"authenticated", true}};
    if (size > options.max_object) {
      e["error"] = {{"code", 413}, {"message", "object larger than this node accepts (" +
                                                   std::to_string(options.max_object) + " bytes)"}};
      objects.push_back(std::move(e));
      continue;
    }
    auto held = store->HasContent(*digest, size);
    if (!held.ok()) return SendStatus(res, held.status());
    if (!*held || !(own.count(*digest) || Uploaded(repo->id.str(), *digest))) {
      // At most kMaxParts parts per object (larger parts for huge objects, as S3 does), and
      // kMaxPartUrls signed part URLs per answer (the rest go basic).
      Signed sg{repo->id.str(), size, std::max(options.multipart_chunk, (size + kMaxParts - 1) / kMaxParts), 0,
                who->token_name, exp};
      uint64_t parts = (size + sg.chunk - 1) / sg.chunk;
      if (multipart_ok && size >= options.multipart_threshold && parts > 1 && part_urls + parts <= kMaxPartUrls) {
        any_multipart = true;
        part_urls += parts;
        json header = {{"chunk_size", std::to_string(sg.chunk)}};
        for (uint64_t p = 1; p <= parts; ++p) {
          char key[16];
          std::snprintf(key, sizeof key, "%05llu", static_cast<unsigned long long>(p));
          Signed ps = sg;
          ps.part = static_cast<int>(p);
          header[key] = SignUrl(base, "objects", oid, ps, exp);
        }
        e["actions"] = {{"upload", {{"href", SignUrl(base, "complete", oid, sg, exp)}, {"header", header},
                                    {"expires_in", options.url_lifetime_s}}}};
      } else {
        sg.chunk = size == 0 ? 1 : size;
        e["actions"] = {{"upload", {{"href", SignUrl(base, "objects", oid, sg, exp)},
                                    {"expires_in", options.url_lifetime_s}}}};
      }
    }
    objects.push_back(std::move(e));
  }
  res.set_content(json{{"transfer", any_multipart ? "multipart" : "basic"}, {"objects", objects}}.dump(),
                   "application/vnd.git-lfs+json");
}

constexpr size_t kMaxLfsRefs = 1000;

void WriteApi::Impl::LfsDownloadBatch(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                                      const json& body, const std::optional<Principal>& who) {
  if (r.type != "model") return SendError(res, 400, "UnsupportedRepoType", "this node stores model repos only");
  auto repo = GitRepo(r, who, res);
  if (!repo) return;
  if (!body.contains("objects") || !body["objects"].is_array() || body["objects"].size() > kMaxBatchObjects) {
    return SendError(res, 400, "BadRequest", "objects must be an array of at most " + std::to_string(kMaxBatchObjects));
  }
  std::vector<std::pair<Sha256Digest, uint64_t>> wanted;
  for (const auto& o : body["objects"]) {
    std::string oid = o.is_object() ? Str(o, "oid") : "";
    auto digest = Sha256Digest::FromHex(oid);
    if (!digest.ok() || !o.contains("size") || !o["size"].is_number_unsigned()) {
      return SendError(res, 422, "BadRequest", "each object needs a 64-hex sha256 oid and a size");
    }
    wanted.emplace_back(*digest, o["size"].get<uint64_t>());
  }
  // The objects of the refs the caller sees (a writer's include the staged heads): an oid from
  // another repo's listing gets "does not exist", as an absent one does. Refs are read until
  // every object asked for was found (at most kMaxLfsRefs of them).
  std::set<Sha256Digest> left;
  for (const auto& [d, size] : wanted) left.insert(d);
  std::map<Sha256Digest, uint64_t> visible;
  size_t scanned = 0;
  std::set<GitOid> listed;
  for (const auto& rf : GitView(*repo, who).refs) {
    if (left.empty() || ++scanned > kMaxLfsRefs) break;
    if (!listed.insert(rf.commit).second) continue;
    auto files = store->ListFiles(rf.commit);
    if (!files.ok()) continue;
    for (const auto& f : *files) {
      if (!f.lfs) continue;
      visible[f.sha256] = f.size;
      left.erase(f.sha256);
    }
  }
  const std::string base = Base(req);
  const int64_t exp = static_cast<int64_t>(std::time(nullptr)) + options.download_url_lifetime_s;
  json objects = json::array();
  for (const auto& [digest, size] : wanted) {
    json e = {{"oid", digest.hex()}, {"size", size}, {"authenticated", true}};
    auto it = visible.find(digest);
    if (it == visible.end() || it->second != size) {
      e["error"] = {{"code", 404}, {"message", "Object does not exist"}};
    } else {
      // Signed for this repo as it is now: the URL stops working if the repo goes away or
      // changes visibility.
      Signed sg{repo->id.str(), size, 1, 0, "v" + std::to_string(static_cast<int>(repo->visibility)), exp};
      e["actions"] = {{"download", {{"href", SignUrl(base, "download", digest.hex(), sg, exp)},
                                    {"expires_in", options.download_url_lifetime_s}}}};
    }
    objects.push_back(std::move(e));
  }
  res.set_content(json{{"transfer", "basic"}, {"objects", objects}}.dump(), "application/vnd.git-lfs+json");
}

void WriteApi::Impl::LfsGet(const WRoute& r, const httplib::Request& req, httplib::Response& res) {
  auto target = SignedTarget(r, req, "download", res);
  if (!target) return;
  const auto& [digest, sg] = *target;
  auto id = store::RepoId::Parse(sg.repo);
  auto repo = id.ok() ? store->GetRepo(*id) : Result<store::RepoInfo>(NotFoundError(""));
  if (!repo.ok() || sg.uploader != "v" + std::to_string(static_cast<int>(repo->visibility))) {
    return SendError(res, 404, "NotFound", "no such object");
  }
  store::FileEntry f;
  f.sha256 = digest;
  f.size = sg.size;
  auto held = store->HasContent(digest, sg.size);
  if (!held.ok() || !*held) return SendError(res, 404, "NotFound", "no such object");
  auto reader = store->OpenFile(f);
  if (!reader.ok()) return SendStatus(res, reader.status());
  std::shared_ptr<store::FileReader> fr(std::move(*reader));
  const_cast<httplib::Request&>(req).ranges.clear();
  res.set_content_provider(sg.size, "application/octet-stream", [fr](size_t at, size_t want, httplib::DataSink& sink) {
    bool ok = true;
    Status s = fr->Read(at, std::min<size_t>(want, 1 << 20), [&](std::string_view piece) {
      if (!sink.write(piece.data(), piece.size())) ok = false;
      return ok ? OkStatus() : CancelledError("client went away");
    });
    return s.ok() && ok;
  });
}

void WriteApi::Impl::Remember(const store::ContentInfo& info) {
  std::lock_guard<std::mutex> lock(stats_mu);
  if (upload_stats.size() >= kMaxUploadStats) upload_stats.erase(upload_stats.begin());
  upload_stats[info.sha256] = UploadStat{info.new_raw_bytes, info.new_stored_bytes};
}

UploadStat WriteApi::Impl::TakeStat(const Sha256Digest& d) {
  std::lock_guard<std::mutex> lock(stats_mu);
  auto it = upload_stats.find(d);
  if (it == upload_stats.end()) return {};
  UploadStat s = it->second;
  upload_stats.erase(it);
  return s;
}

void WriteApi::Impl::LfsPut(const WRoute& r, const httplib::Request& req, httplib::Response& res,
            const httplib::ContentReader& reader) {
  auto target = SignedTarget(r, req, "objects", res);
  if (!target) return;
  const Sha256Digest& digest = target->first;
  const Signed& sg = target->second;
  const uint64_t size = sg.size, chunk = sg.chunk;
  const int part = sg.part;
  uint64_t expect = size;
  if (part > 0) {
    uint64_t parts = (size + chunk - 1) / chunk;
    if (static_cast<uint64_t>(part) > parts) return SendError(res, 400, "BadRequest", "no such part");
    uint64_t begin = (static_cast<uint64_t>(part) - 1) * chunk;
    expect = std::min(chunk, size - begin);
  }
  if (req.has_header("Content-Length")) {
    uint64_t cl = 0;
    if (!ParseU64(req.get_header_value("Content-Length"), &cl) || cl != expect) {
      return SendError(res, 400, "SizeMismatch",
                       "Content-Length must be " + std::to_string(expect) + " for this upload");
    }
  }
  if (part > 0) return PutPart(r.rest, sg, part, expect, res, reader);
  // Even when the store holds the object (for another repo), the bytes are read and hashed: that
  // is what makes it this repo's to commit. The store keeps no chunk twice.
  store::ContentSpec spec;
  spec.path = "lfs/" + r.rest;
  spec.size = size;
  spec.sha256 = digest;
  auto w = store->NewContentWriter(spec);
  if (!w.ok()) return SendWriteError(res, w.status());
  Status st;
  bool read_ok = reader([&](const char* data, size_t n) {
    st = (*w)->Write(std::string_view(data, n));
    return st.ok();
  });
  if (!st.ok()) return SendWriteError(res, st, 400, "BadContent");
  if (!read_ok) return SendError(res, 400, "BadRequest", "the upload was cut short");
  auto info = (*w)->Finish();
  if (!info.ok()) return SendWriteError(res, info.status(), 400, "BadContent");
  Remember(*info);
  RecordUpload(sg.repo, digest);
  LOG(Info) << "stored LFS object " << r.rest.substr(0, 12) << " (" << size << " bytes, " << info->new_chunks
            << " new chunks of " << info->chunks << ")";
  SendJson(res, json::object());
}

void WriteApi::Impl::ExpireSessions(int64_t now) {
  // Parts on disk whose upload has no session (too many at once, or the node restarted): their
  // folder records when their URLs expire. Swept at most every 2 s.
  if (now >= next_sweep) {
    next_sweep = now + 2;
    std::error_code ec;
    for (const auto& e : fs::directory_iterator(options.uploads_dir, ec)) {
      auto text = ReadFileToString((e.path() / "expires").string(), 64);
      int64_t exp = 0;
      if (!text.ok() || std::from_chars(text->data(), text->data() + text->size(), exp).ec != std::errc() || exp >= now) {
        continue;
      }
      bool live = false;
      for (const auto& [k, s] : sessions) live |= s->dir == e.path().string();
      std::error_code rec;
      if (!live) fs::remove_all(e.path(), rec);
    }
  }
  for (auto it = sessions.begin(); it != sessions.end();) {
    std::unique_lock<std::mutex> busy(it->second->mu, std::try_to_lock);
    if (it->second->expires >= now || !busy.owns_lock()) {
      ++it;
      continue;
    }
    std::error_code ec;
    fs::remove_all(it->second->dir, ec);
    LOG(Info) << "dropped an abandoned multipart upload (its URLs expired)";
    busy.unlock();
    it = sessions.erase(it);
  }
}

std::shared_ptr<PartSession> WriteApi::Impl::Session(const std::string& oid, const Signed& sg, bool create) {
  const std::string key = UploadKey(oid, sg);
  std::lock_guard<std::mutex> lock(sessions_mu);
  ExpireSessions(static_cast<int64_t>(std::time(nullptr)));
  auto it = sessions.find(key);
  if (it != sessions.end()) {
    it->second->expires = std::max(it->second->expires, sg.exp);  // a later batch renews the URLs
    return it->second;
  }
  if (!create || sessions.size() >= kMaxSessions) return nullptr;
  size_t mine = 0;
  for (const auto& [k, s] : sessions) mine += s->uploader == sg.uploader;
  if (mine >= kMaxSessionsPerUploader) return nullptr;
  auto digest = Sha256Digest::FromHex(oid);
  store::ContentSpec spec;
  spec.path = "lfs/" + oid;
  spec.size = sg.size;
  spec.sha256 = *digest;
  auto w = store->NewContentWriter(spec);
  if (!w.ok()) return nullptr;
  auto s = std::make_shared<PartSession>();
  s->writer = std::move(*w);
  s->chunk = sg.chunk;
  s->dir = PartsDir(oid, sg);
  s->uploader = sg.uploader;
  s->expires = sg.exp;
  sessions[key] = s;
  return s;
}

void WriteApi::Impl::EndSession(const std::string& oid, const Signed& sg) {
  std::lock_guard<std::mutex> lock(sessions_mu);
  sessions.erase(UploadKey(oid, sg));
}

void WriteApi::Impl::DrainParts(PartSession& s) {
  std::string buf;
  while (!s.failed) {
    const std::string path = s.dir + "/" + std::to_string(s.next);
    auto file = ReadFile::Open(path);
    if (!file.ok()) return;
    buf.resize(1 << 20);
    for (uint64_t off = 0; off < file->size() && !s.failed;) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), file->size() - off));
      s.failed = !file->ReadAt(off, n, buf.data()).ok() || !s.writer->Write(std::string_view(buf.data(), n)).ok();
      off += n;
    }
    std::error_code ec;
    fs::remove(path, ec);
    ++s.next;
  }
}

void WriteApi::Impl::PutPart(const std::string& oid, const Signed& sg, int part, uint64_t expect, httplib::Response& res,
             const httplib::ContentReader& reader) {
  auto session = Session(oid, sg, /*create=*/true);
  if (session) {
    std::unique_lock<std::mutex> lock(session->mu, std::try_to_lock);
    if (lock.owns_lock() && !session->failed && static_cast<uint64_t>(part) == session->next) {
      uint64_t got = 0;
      bool too_long = false;
      Status st;
      bool read_ok = reader([&](const char* data, size_t n) {
        if (got + n > expect) {
          too_long = true;
          return false;
        }
        got += n;
        st = session->writer->Write(std::string_view(data, n));
        return st.ok();
      });
      if (!read_ok || too_long || got != expect || !st.ok()) {
        // Part of this part is in the writer: the upload cannot be completed any more.
        session->failed = true;
        if (!st.ok()) return SendWriteError(res, st, 400, "BadContent");
        return SendError(res, 400, "SizeMismatch", "part " + std::to_string(part) + " must be " +
                                                       std::to_string(expect) + " bytes");
      }
      ++session->next;
      DrainParts(*session);
      res.set_header("ETag", "\"" + std::to_string(part) + "-" + std::to_string(expect) + "\"");
      return SendJson(res, json::object());
    }
  }
  WritePartFile(PartsDir(oid, sg), part, expect, sg.exp, res, reader);
  if (session && res.status == 200) {
    std::unique_lock<std::mutex> lock(session->mu, std::try_to_lock);
    if (lock.owns_lock()) DrainParts(*session);
  }
}

void WriteApi::Impl::WritePartFile(const std::string& dir, int part, uint64_t expect, int64_t exp, httplib::Response& res,
                   const httplib::ContentReader& reader) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return SendError(res, 500, "InternalError", "cannot create the upload folder");
  // When this upload's URLs expire (the latest batch's): the folder is swept after that. (Parts
  // arrive in parallel: a lost race leaves an expiry of the same batch.)
  {
    auto text = ReadFileToString(dir + "/expires", 64);
    int64_t old = 0;
    if (text.ok()) std::from_chars(text->data(), text->data() + text->size(), old);
    if (exp > old && !WriteFileAtomic(dir + "/expires", std::to_string(exp)).ok()) {
      return SendError(res, 500, "InternalError", "cannot write the upload part");
    }
  }
  std::string final_path = dir + "/" + std::to_string(part);
  std::string tmp = final_path + ".tmp." + std::to_string(reinterpret_cast<uintptr_t>(&res));
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) return SendError(res, 500, "InternalError", "cannot write the upload part");
  uint64_t got = 0;
  bool write_ok = true, too_long = false;
  bool read_ok = reader([&](const char* data, size_t n) {
    if (got + n > expect) {
      too_long = true;
      return false;
    }
    got += n;
    write_ok = std::fwrite(data, 1, n, f) == n;
    return write_ok;
  });
  write_ok = std::fclose(f) == 0 && write_ok;
  if (!read_ok || !write_ok || too_long || got != expect) {
    fs::remove(tmp, ec);
    if (!write_ok) return SendError(res, 500, "InternalError", "cannot write the upload part");
    return SendError(res, 400, "SizeMismatch", "part " + std::to_string(part) + " must be " +
                                                   std::to_string(expect) + " bytes");
  }
  fs::rename(tmp, final_path, ec);
  if (ec) return SendError(res, 500, "InternalError", "cannot keep the upload part");
  res.set_header("ETag", "\"" + std::to_string(part) + "-" + std::to_string(expect) + "\"");
  res.status = 200;
  SendJson(res, json::object());
}

void WriteApi::Impl::LfsComplete(const WRoute& r, const httplib::Request& req, httplib::Response& res,
                 const httplib::ContentReader& reader) {
  auto target = SignedTarget(r, req, "complete", res);
  if (!target) return;
  const auto& [digest, sg] = *target;
  auto body = JsonBody(reader, res);
  if (!body) return;
  if (Str(*body, "oid") != r.rest) return SendError(res, 400, "BadRequest", "oid does not match the URL");
  const uint64_t parts = (sg.size + sg.chunk - 1) / sg.chunk;
  // Parts not in the writer yet wait on disk: fed in order now. Without a session (the node
  // restarted since the parts came) one is made here and takes every part from disk.
  auto session = Session(r.rest, sg, /*create=*/true);
  if (!session) {
    res.set_header("Retry-After", "30");
    return SendError(res, 503, "TooManyUploads",
                     "too many multipart uploads in progress (at most " + std::to_string(kMaxSessionsPerUploader) +
                         " per token, " + std::to_string(kMaxSessions) + " in all); retry later");
  }
  std::lock_guard<std::mutex> lock(session->mu);
  DrainParts(*session);
  std::error_code ec;
  if (session->failed) {
    EndSession(r.rest, sg);
    fs::remove_all(session->dir, ec);
    return SendError(res, 400, "IncompleteUpload", "a part failed; upload the object again");
  }
  if (session->next != parts + 1) {
    return SendError(res, 400, "IncompleteUpload",
                     "part " + std::to_string(session->next) + " of " + std::to_string(parts) + " is missing");
  }
  auto info = session->writer->Finish();
  EndSession(r.rest, sg);
  fs::remove_all(session->dir, ec);
  if (!info.ok()) return SendWriteError(res, info.status(), 400, "BadContent");
  Remember(*info);
  RecordUpload(sg.repo, digest);
  LOG(Info) << "stored LFS object " << r.rest.substr(0, 12) << " from " << parts << " parts (" << sg.size << " bytes)";
  SendJson(res, json::object());
}

}  // namespace hubnode::hub
