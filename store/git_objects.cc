#include "store/git_objects.h"

#include "store/store_impl.h"

#include <algorithm>
#include <charconv>
#include <map>

namespace hubnode::store {
namespace {

std::string SortKey(const TreeEntry& e) { return e.mode == kModeTree ? e.name + "/" : e.name; }

std::string FormatSignature(const Signature& s) {
  int off = s.tz_offset_min;
  char sign = off < 0 ? '-' : '+';
  if (off < 0) off = -off;
  char tz[16];
  std::snprintf(tz, sizeof tz, "%c%02d%02d", sign, off / 60, off % 60);
  return s.name + " <" + s.email + "> " + std::to_string(s.time) + " " + tz;
}

Result<Signature> ParseSignature(std::string_view v) {
  size_t lt = v.find(" <"), gt = v.rfind("> ");
  if (lt == std::string_view::npos || gt == std::string_view::npos || gt < lt) {
    return DataLossError("malformed commit signature");
  }
  Signature s;
  s.name = std::string(v.substr(0, lt));
  s.email = std::string(v.substr(lt + 2, gt - lt - 2));
  std::string_view rest = v.substr(gt + 2);
  size_t sp = rest.find(' ');
  if (sp == std::string_view::npos || rest.size() - sp != 6) return DataLossError("malformed commit date");
  auto r = std::from_chars(rest.data(), rest.data() + sp, s.time);
  if (r.ec != std::errc() || r.ptr != rest.data() + sp) return DataLossError("malformed commit time");
  std::string_view tz = rest.substr(sp + 1);
  int hh = 0, mm = 0;
  if ((tz[0] != '+' && tz[0] != '-') || std::from_chars(tz.data() + 1, tz.data() + 3, hh).ec != std::errc() ||
      std::from_chars(tz.data() + 3, tz.data() + 5, mm).ec != std::errc()) {
    return DataLossError("malformed commit time zone");
  }
  s.tz_offset_min = (tz[0] == '-' ? -1 : 1) * (hh * 60 + mm);
  return s;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

}  // namespace

std::string ObjectHeader(std::string_view type, uint64_t size) {
  std::string h(type);
  h += ' ';
  h += std::to_string(size);
  h.push_back('\0');
  return h;
}

GitOid HashObject(std::string_view type, std::string_view body) {
  Sha1 h;
  h.Update(ObjectHeader(type, body.size()));
  h.Update(body);
  return h.Finish();
}

std::string EncodeTree(std::vector<TreeEntry> entries) {
  std::sort(entries.begin(), entries.end(),
            [](const TreeEntry& a, const TreeEntry& b) { return SortKey(a) < SortKey(b); });
  std::string out;
  for (const auto& e : entries) {
    char mode[16];
    std::snprintf(mode, sizeof mode, "%o", e.mode);
    out += mode;
    out.push_back(' ');
    out += e.name;
    out.push_back('\0');
    out.append(e.oid.view());
  }
  return out;
}

Result<std::vector<TreeEntry>> DecodeTree(std::string_view body) {
  std::vector<TreeEntry> out;
  while (!body.empty()) {
    size_t sp = body.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp > 7) return DataLossError("malformed tree entry mode");
    uint32_t mode = 0;
    auto r = std::from_chars(body.data(), body.data() + sp, mode, 8);
    if (r.ec != std::errc() || r.ptr != body.data() + sp) return DataLossError("malformed tree entry mode");
    size_t nul = body.find('\0', sp + 1);
    if (nul == std::string_view::npos || nul == sp + 1 || body.size() < nul + 1 + 20) {
      return DataLossError("malformed tree entry");
    }
    TreeEntry e;
    e.mode = mode;
    e.name = std::string(body.substr(sp + 1, nul - sp - 1));
    ASSIGN_OR_RETURN(e.oid, GitOid::FromBytes(body.substr(nul + 1, 20)));
    out.push_back(std::move(e));
    body.remove_prefix(nul + 21);
  }
  return out;
}

std::string EncodeCommit(const CommitObject& c) {
  std::string out = "tree " + c.tree.hex() + "\n";
  for (const auto& p : c.parents) out += "parent " + p.hex() + "\n";
  out += "author " + FormatSignature(c.author) + "\n";
  out += "committer " + FormatSignature(c.committer) + "\n\n";
  out += c.message;
  if (c.message.empty() || c.message.back() != '\n') out.push_back('\n');
  return out;
}

Result<CommitObject> DecodeCommit(std::string_view body) {
  CommitObject c;
  bool have_tree = false, have_author = false, have_committer = false;
  while (true) {
    size_t nl = body.find('\n');
    if (nl == std::string_view::npos) return DataLossError("commit without message separator");
    std::string_view line = body.substr(0, nl);
    body.remove_prefix(nl + 1);
    if (line.empty()) break;
    size_t sp = line.find(' ');
    if (sp == std::string_view::npos) return DataLossError("malformed commit header line");
    std::string_view key = line.substr(0, sp), val = line.substr(sp + 1);
    if (key == "tree") {
      ASSIGN_OR_RETURN(c.tree, GitOid::FromHex(val));
      have_tree = true;
    } else if (key == "parent") {
      ASSIGN_OR_RETURN(GitOid p, GitOid::FromHex(val));
      c.parents.push_back(p);
    } else if (key == "author") {
      ASSIGN_OR_RETURN(c.author, ParseSignature(val));
      have_author = true;
    } else if (key == "committer") {
      ASSIGN_OR_RETURN(c.committer, ParseSignature(val));
      have_committer = true;
    }
  }
  if (!have_tree || !have_author || !have_committer) return DataLossError("commit missing a header");
  c.message = std::string(body);
  return c;
}

std::string LfsPointer(const Sha256Digest& oid, uint64_t size) {
  return "version https://git-lfs.github.com/spec/v1\noid sha256:" + oid.hex() + "\nsize " +
         std::to_string(size) + "\n";
}

namespace {
struct Dir {
  std::map<std::string, Dir> dirs;
  std::vector<TreeEntry> files;
};

GitOid EncodeDir(const Dir& d, const std::function<void(const GitOid&, const std::string&)>& emit) {
  std::vector<TreeEntry> entries = d.files;
  for (const auto& [name, sub] : d.dirs) entries.push_back(TreeEntry{kModeTree, name, EncodeDir(sub, emit)});
  std::string body = EncodeTree(std::move(entries));
  GitOid oid = HashObject("tree", body);
  emit(oid, body);
  return oid;
}
}  // namespace

GitOid BuildTrees(const std::vector<TreeFile>& files,
                  const std::function<void(const GitOid&, const std::string&)>& emit) {
  Dir root;
  for (const auto& f : files) {
    Dir* d = &root;
    std::string_view rest = f.path;
    for (size_t slash; (slash = rest.find('/')) != std::string_view::npos; rest.remove_prefix(slash + 1)) {
      d = &d->dirs[std::string(rest.substr(0, slash))];
    }
    d->files.push_back(TreeEntry{f.mode, std::string(rest), f.blob});
  }
  return EncodeDir(root, emit);
}

bool StoresAsLfs(std::string_view path, uint64_t size) { return ShouldStoreAsLfs(path, size); }

Result<GitOid> PlanCommitId(const std::vector<PlannedFile>& files, const Signature& author,
                            const std::string& message) {
  std::vector<TreeFile> tree_files;
  for (const auto& f : files) {
    RETURN_IF_ERROR(ValidatePath(f.path));
    bool lfs = ShouldStoreAsLfs(f.path, f.size);
    if (lfs && !f.sha256) return NotFoundError(f.path + ": its SHA-256 is needed to plan the commit");
    if (!lfs && !f.git_blob) return NotFoundError(f.path + ": its git blob id is needed to plan the commit");
    tree_files.push_back(TreeFile{f.path, kModeFile, lfs ? HashObject("blob", LfsPointer(*f.sha256, f.size)) : *f.git_blob});
  }
  CommitObject c;
  c.tree = BuildTrees(tree_files, [](const GitOid&, const std::string&) {});
  c.author = author;
  c.committer = author;
  c.message = message;
  return HashObject("commit", EncodeCommit(c));
}

std::string LfsPointerText(const FileEntry& file) { return LfsPointer(file.sha256, file.size); }

bool ShouldStoreAsLfs(std::string_view path, uint64_t size) {
  if (size > (10u << 20)) return true;
  std::string lower(path);
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  std::string_view name = lower;
  if (size_t slash = name.rfind('/'); slash != std::string_view::npos) name.remove_prefix(slash + 1);
  // Hugging Face's default .gitattributes LFS patterns.
  static constexpr std::string_view kSuffixes[] = {
      ".7z",   ".arrow", ".bin",   ".bz2",    ".ckpt", ".ftz",  ".gz",    ".h5",  ".joblib",
      ".mlmodel", ".model", ".msgpack", ".npy", ".npz", ".onnx", ".ot", ".parquet", ".pb",
      ".pickle", ".pkl", ".pt", ".pth", ".rar", ".safetensors", ".tar", ".tflite", ".tgz",
      ".wasm", ".xz", ".zip", ".zst", ".gguf"};
  for (auto s : kSuffixes) {
    if (EndsWith(name, s)) return true;
  }
  if (name.find(".tar.") != std::string_view::npos || name.find("tfevents") != std::string_view::npos) return true;
  return lower.rfind("saved_model/", 0) == 0 || lower.find("/saved_model/") != std::string::npos;
}

}  // namespace hubnode::store
