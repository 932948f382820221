// Model manifests: which resources a model has and their digests (OMS §6).
#include <algorithm>
#include <filesystem>
#include <mutex>
#include <map>
#include <set>

#include "base/file.h"
#include "base/thread_pool.h"
#include "verify/verify.h"

namespace hubnode::verify {
namespace {

namespace fs = std::filesystem;

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 2) return false;
    }
    i += n;
  }
  return true;
}

struct Job {
  std::string path;  // relative
  std::string abs;
  uint64_t begin, end;
  std::string name;
};

Status Walk(const std::string& root, const std::string& rel, const std::set<std::string>& ignore, bool allow_symlinks,
            std::vector<std::pair<std::string, std::string>>* out) {
  std::error_code ec;
  fs::directory_iterator it(rel.empty() ? fs::path(root) : fs::path(root) / rel, ec);
  if (ec) return InvalidArgumentError("cannot read directory " + (rel.empty() ? root : rel) + ": " + ec.message());
  for (const auto& e : it) {
    std::string name = e.path().filename().string();
    std::string child = rel.empty() ? name : rel + "/" + name;
    if (ignore.count(child)) continue;
    if (!ValidUtf8(child)) return InvalidArgumentError("path is not valid UTF-8: " + child);
    fs::file_status st = e.symlink_status(ec);
    if (fs::is_symlink(st)) {
      if (!allow_symlinks) return InvalidArgumentError("symlinks are not signed: " + child);
      st = e.status(ec);
    }
    if (fs::is_directory(st)) {
      RETURN_IF_ERROR(Walk(root, child, ignore, allow_symlinks, out));
    } else if (fs::is_regular_file(st)) {
      out->emplace_back(child, e.path().string());
    }
  }
  return OkStatus();
}

}  // namespace

std::vector<std::string> DefaultIgnorePaths(const std::string& signature_name) {
  return {".git", ".gitignore", ".gitattributes", ".github", signature_name};
}

Result<Manifest> HashDirectory(const std::string& dir, const Serialization& ser, unsigned threads) {
  if (ser.hash_type != "sha256") return InvalidArgumentError("unsupported hash_type '" + ser.hash_type + "'");
  if (ser.method != "files" && ser.method != "shards") return InvalidArgumentError("unknown method '" + ser.method + "'");
  if (ser.method == "shards" && ser.shard_size == 0) return InvalidArgumentError("shard_size must be positive");
  std::error_code ec;
  std::vector<std::pair<std::string, std::string>> files;
  if (fs::is_regular_file(fs::symlink_status(dir, ec))) {
    // A model that is one file: its resource is named "." (its path relative to itself), as the
    // reference tool names it.
    files.emplace_back(".", dir);
  } else if (!fs::is_directory(dir, ec)) {
    return InvalidArgumentError("not a directory or a regular file: " + dir);
  } else {
    std::set<std::string> ignore(ser.ignore_paths.begin(), ser.ignore_paths.end());
    RETURN_IF_ERROR(Walk(dir, "", ignore, ser.allow_symlinks, &files));
  }
  if (files.empty()) return InvalidArgumentError("nothing to sign: the model has no files");

  std::vector<Job> jobs;
  for (const auto& [rel, abs] : files) {
    uint64_t size = fs::file_size(abs, ec);
    if (ec) return InvalidArgumentError("cannot stat " + rel + ": " + ec.message());
    if (ser.method == "files") {
      jobs.push_back(Job{rel, abs, 0, size, rel});
      continue;
    }
    for (uint64_t b = 0; b < size; b += ser.shard_size) {
      uint64_t e = std::min(size, b + ser.shard_size);
      jobs.push_back(Job{rel, abs, b, e, rel + ":" + std::to_string(b) + ":" + std::to_string(e)});
    }
  }

  Manifest m;
  m.model_name = fs::path(dir).filename().string();
  if (m.model_name.empty()) m.model_name = fs::path(dir).parent_path().filename().string();
  m.serialization = ser;
  m.resources.resize(jobs.size());
  std::mutex mu;
  Status first;
  {
    ThreadPool pool(threads);
    for (size_t i = 0; i < jobs.size(); ++i) {
      pool.Submit([&, i] {
        const Job& j = jobs[i];
        Sha256 h;
        Status s = [&]() -> Status {
          ASSIGN_OR_RETURN(ReadFile f, ReadFile::Open(j.abs));
          std::string buf(1 << 20, '\0');
          for (uint64_t off = j.begin; off < j.end;) {
            size_t n = static_cast<size_t>(std::min<uint64_t>(buf.size(), j.end - off));
            RETURN_IF_ERROR(f.ReadAt(off, n, buf.data()));
            h.Update(buf.data(), n);
            off += n;
          }
          return OkStatus();
        }();
        std::lock_guard<std::mutex> lock(mu);
        if (!s.ok() && first.ok()) first = s.WithContext(j.path);
        m.resources[i] = Resource{j.name, "sha256", std::string(h.Finish().view())};
      });
    }
    pool.Wait();
  }
  RETURN_IF_ERROR(first);
  std::sort(m.resources.begin(), m.resources.end(), [](const Resource& a, const Resource& b) { return a.name < b.name; });
  return m;
}

Manifest ManifestFromDigests(std::string model_name, const std::vector<std::pair<std::string, Sha256Digest>>& files,
                             const Serialization& serialization) {
  Manifest m;
  m.model_name = std::move(model_name);
  m.serialization = serialization;
  std::set<std::string> ignore(serialization.ignore_paths.begin(), serialization.ignore_paths.end());
  for (const auto& [path, digest] : files) {
    std::string top = path.substr(0, path.find('/'));
    if (ignore.count(path) || ignore.count(top)) continue;
    m.resources.push_back(Resource{path, "sha256", std::string(digest.view())});
  }
  std::sort(m.resources.begin(), m.resources.end(), [](const Resource& a, const Resource& b) { return a.name < b.name; });
  return m;
}

Sha256Digest RootDigest(const Manifest& m) {
  Sha256 h;
  for (const auto& r : m.resources) h.Update(r.digest);
  return h.Finish();
}

Status CompareManifests(const Manifest& signed_manifest, const Manifest& actual) {
  std::map<std::string, const Resource*> have;
  for (const auto& r : actual.resources) have[r.name] = &r;
  std::set<std::string> seen;
  for (const auto& r : signed_manifest.resources) {
    seen.insert(r.name);
    auto it = have.find(r.name);
    if (it == have.end()) return PermissionDeniedError("signed file missing from the model: " + r.name);
    if (it->second->digest != r.digest) {
      return PermissionDeniedError("digest mismatch: " + r.name + " is " + HexEncode(it->second->digest) +
                                   ", signed " + HexEncode(r.digest));
    }
  }
  for (const auto& r : actual.resources) {
    if (!seen.count(r.name)) return PermissionDeniedError("file not covered by the signature: " + r.name);
  }
  return OkStatus();
}

}  // namespace hubnode::verify
