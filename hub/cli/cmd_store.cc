// Store commands: import, ls, cat, log, refs, tensors, experts, export, stats, gc.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <charconv>
#include <cstdio>
#include <ctime>
#include <nlohmann/json.hpp>

#include "hub/cli/commands.h"
#include "hub/s3/s3_tier.h"
#include "hub/trust/trust_gate.h"

namespace hubnode::hub {
namespace {

using json = nlohmann::json;

Result<store::Signature> ParseAuthor(const std::string& author, int64_t date) {
  store::Signature sig;
  if (!author.empty()) {
    size_t lt = author.find(" <");
    if (lt == std::string::npos || author.back() != '>' || lt == 0) {
      return InvalidArgumentError("--author must look like 'Name <email>'");
    }
    sig.name = author.substr(0, lt);
    sig.email = author.substr(lt + 2, author.size() - lt - 3);
    if (sig.email.find_first_of("<>\n") != std::string::npos || sig.name.find_first_of("<>\n") != std::string::npos) {
      return InvalidArgumentError("--author must look like 'Name <email>'");
    }
  }
  sig.time = date;
  return sig;
}

Status WriteStdout(std::string_view piece) {
  while (!piece.empty()) {
    ssize_t w = ::write(STDOUT_FILENO, piece.data(), piece.size());
    if (w < 0) {
      if (errno == EINTR) continue;
      return UnavailableError("cannot write to standard output");
    }
    piece.remove_prefix(static_cast<size_t>(w));
  }
  return OkStatus();
}

Result<std::pair<uint64_t, uint64_t>> ParseRange(const std::string& r, uint64_t size) {
  // "A-B" inclusive, "A-" to the end.
  size_t dash = r.find('-');
  uint64_t a = 0, b = size ? size - 1 : 0;
  auto num = [](std::string_view s, uint64_t* v) {
    auto res = std::from_chars(s.data(), s.data() + s.size(), *v);
    return res.ec == std::errc() && res.ptr == s.data() + s.size() && !s.empty();
  };
  if (dash == std::string::npos || !num(std::string_view(r).substr(0, dash), &a) ||
      (dash + 1 < r.size() && !num(std::string_view(r).substr(dash + 1), &b))) {
    return InvalidArgumentError("--range must be A-B or A-");
  }
  if (b < a || a >= size) return OutOfRangeError("range " + r + " is outside the file's " + std::to_string(size) + " bytes");
  b = std::min(b, size - 1);
  return std::make_pair(a, b - a + 1);
}

std::string ExpertName(const store::ExpertKey& k) {
  return k.expert == store::kSharedExpertIndex ? "shared" : std::to_string(k.expert);
}

}  // namespace

void AddStoreCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  // import
  {
    auto* sub = app.add_subcommand("import", "Import a directory as one commit");
    struct Args {
      std::string dir, repo, branch = "main", message, author;
      int64_t date = 0;
      bool is_private = false;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("dir", a->dir, "Directory to import")->required();
    sub->add_option("--repo", a->repo, "Repository, NAMESPACE/NAME")->required();
    sub->add_option("--branch", a->branch, "Branch (default main)");
    sub->add_option("-m,--message", a->message, "Commit message");
    sub->add_option("--author", a->author, "Author, 'Name <email>'");
    sub->add_option("--date", a->date, "Commit time, unix seconds (default now)");
    sub->add_flag("--private", a->is_private, "Create the repo private (a new repo only)");
    out->push_back({sub, [a, &flags]() -> int {
      auto repo = store::RepoId::Parse(a->repo);
      if (!repo.ok()) return Fail(repo.status());
      auto sig = ParseAuthor(a->author, a->date);
      if (!sig.ok()) return Fail(sig.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      store::ImportOptions o;
      o.branch = a->branch;
      o.message = a->message;
      o.author = *sig;
      if (a->is_private) o.visibility = store::Visibility::kPrivate;
      // Policy runs before the commit becomes visible: deny refuses; review holds the commit on
      // refs/held/<branch> until `hubnode approve`.
      auto trust = TrustFile(flags.data_dir + "/trust.json").Load();
      if (!trust.ok()) return Fail(trust.status());
      auto matcher = verify::LicenseMatcher::FromDirectory("/usr/share/common-licenses");
      TrustReport report = Assess(DirectoryView(a->dir), a->repo, NodeContext(*trust, &matcher, st->get()));
      if (report.verdict == verify::Verdict::kDeny) {
        return Fail(PermissionDeniedError("refused by policy: " + report.Summary()));
      }
      bool held = report.verdict == verify::Verdict::kReview;
      if (held) o.branch = "refs/held/" + (a->branch.rfind("refs/heads/", 0) == 0 ? a->branch.substr(11) : a->branch);
      ProgressBar bar(!flags.quiet);
      o.progress = [&](const store::ImportProgress& p) { bar.Update(p.bytes_done, p.bytes_total, p.current_file); };
      auto r = (*st)->ImportDirectory(a->dir, *repo, o);
      bar.Finish();
      if (!r.ok()) return Fail(r.status());
      if (held) {
        std::printf("held for review %s@%s: %s\n  release it with: hubnode approve %s@%s\n", a->repo.c_str(),
                    r->commit.hex().c_str(), report.Summary().c_str(), a->repo.c_str(), r->commit.hex().c_str());
      } else {
        std::printf("%s %s@%s\n", r->changed ? "committed" : "unchanged", a->repo.c_str(), r->commit.hex().c_str());
      }
      std::printf("files %llu, %s; chunks %llu, new %llu (%s raw, %s stored)\n",
                  static_cast<unsigned long long>(r->files), HumanBytes(r->bytes).c_str(),
                  static_cast<unsigned long long>(r->chunks), static_cast<unsigned long long>(r->new_chunks),
                  HumanBytes(r->new_raw_bytes).c_str(), HumanBytes(r->new_stored_bytes).c_str());
      return 0;
    }});
  }
  // ls
  {
    auto* sub = app.add_subcommand("ls", "List repos, or the files of REPO[@REV]");
    auto spec = std::make_shared<std::string>();
    auto as_json = std::make_shared<bool>(false);
    sub->add_option("repo", *spec, "REPO[@REV]");
    sub->add_flag("--json", *as_json, "Print JSON");
    out->push_back({sub, [spec, as_json, &flags]() -> int {
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      if (spec->empty()) {
        auto repos = (*st)->ListRepos();
        if (!repos.ok()) return Fail(repos.status());
        json j = json::array();
        for (const auto& r : *repos) {
          auto head = (*st)->Resolve(r.id, "HEAD");
          std::string h = head.ok() ? head->hex() : "-";
          if (*as_json) {
            j.push_back({{"id", r.id.str()}, {"default_branch", r.default_branch}, {"head", h}, {"created", r.created}});
          } else {
            std::printf("%-40s %-10s %s\n", r.id.str().c_str(), r.default_branch.c_str(), h.c_str());
          }
        }
        if (*as_json) std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      auto commit = (*st)->Resolve(rs->repo, rs->rev);
      if (!commit.ok()) return Fail(commit.status());
      auto files = (*st)->ListFiles(*commit);
      if (!files.ok()) return Fail(files.status());
      json j = json::array();
      for (const auto& f : *files) {
        if (*as_json) {
          json e = {{"path", f.path}, {"size", f.size}, {"oid", f.blob.hex()}, {"sha256", f.sha256.hex()}};
          if (f.lfs) e["lfs"] = {{"oid", f.sha256.hex()}, {"size", f.size}, {"pointerSize", f.pointer_size}};
          j.push_back(e);
        } else {
          std::printf("%12llu  %s  %s  %s\n", static_cast<unsigned long long>(f.size), f.lfs ? "lfs" : "git",
                      (f.lfs ? f.sha256.hex() : f.blob.hex()).substr(0, 12).c_str(), f.path.c_str());
        }
      }
      if (*as_json) std::printf("%s\n", j.dump(2).c_str());
      return 0;
    }});
  }
  // cat
  {
    auto* sub = app.add_subcommand("cat", "Write a file (or a byte range, or a tensor) to stdout");
    struct Args {
      std::string spec, range, tensor;
    };
    auto a = std::make_shared<Args>();
    sub->add_option("spec", a->spec, "REPO@REV:PATH, or REPO@REV with --tensor")->required();
    sub->add_option("--range", a->range, "Byte range A-B (inclusive) or A-");
    sub->add_option("--tensor", a->tensor, "Write the raw bytes of this tensor");
    out->push_back({sub, [a, &flags]() -> int {
      auto rs = ParseRepoSpec(a->spec);
      if (!rs.ok()) return Fail(rs.status());
      if (!rs->path && a->tensor.empty()) return Fail(InvalidArgumentError("give REPO@REV:PATH or --tensor NAME"));
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto commit = (*st)->Resolve(rs->repo, rs->rev);
      if (!commit.ok()) return Fail(commit.status());
      store::FileEntry file;
      uint64_t offset = 0, length = 0;
      if (!a->tensor.empty()) {
        auto loc = (*st)->FindTensor(*commit, a->tensor);
        if (!loc.ok()) return Fail(loc.status());
        file = loc->file;
        offset = loc->tensor.begin;
        length = loc->tensor.end - loc->tensor.begin;
      } else {
        auto f = (*st)->StatFile(*commit, *rs->path);
        if (!f.ok()) return Fail(f.status());
        file = *f;
        length = file.size;
      }
      if (!a->range.empty()) {
        auto r = ParseRange(a->range, length);
        if (!r.ok()) return Fail(r.status());
        offset += r->first;
        length = r->second;
      }
      auto reader = (*st)->OpenFile(file);
      if (!reader.ok()) return Fail(reader.status());
      Status s = (*reader)->Read(offset, length, WriteStdout);
      return s.ok() ? 0 : Fail(s);
    }});
  }
  // log
  {
    auto* sub = app.add_subcommand("log", "Commit history of REPO[@REV]");
    auto spec = std::make_shared<std::string>();
    auto limit = std::make_shared<size_t>(50);
    sub->add_option("repo", *spec, "REPO[@REV]")->required();
    sub->add_option("-n", *limit, "At most N commits (default 50)");
    out->push_back({sub, [spec, limit, &flags]() -> int {
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto commit = (*st)->Resolve(rs->repo, rs->rev);
      if (!commit.ok()) return Fail(commit.status());
      auto log = (*st)->Log(*commit, *limit);
      if (!log.ok()) return Fail(log.status());
      for (const auto& c : *log) {
        std::printf("commit %s\nAuthor: %s <%s>\nDate:   %s\n\n    %s\n\n", c.id.hex().c_str(), c.author.name.c_str(),
                    c.author.email.c_str(), FormatTime(c.author.time).c_str(), c.Title().c_str());
      }
      return 0;
    }});
  }
  // refs
  {
    auto* sub = app.add_subcommand("refs", "Branches, tags and PR refs of REPO");
    auto spec = std::make_shared<std::string>();
    sub->add_option("repo", *spec, "REPO")->required();
    out->push_back({sub, [spec, &flags]() -> int {
      auto repo = store::RepoId::Parse(*spec);
      if (!repo.ok()) return Fail(repo.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto refs = (*st)->ListRefs(*repo);
      if (!refs.ok()) return Fail(refs.status());
      for (const auto& r : *refs) std::printf("%s %s\n", r.commit.hex().c_str(), r.name.c_str());
      return 0;
    }});
  }
  // ref set / ref delete
  {
    auto* ref = app.add_subcommand("ref", "Create, move or delete a branch, tag or refs/pr/N");
    ref->require_subcommand(1);
    struct Args {
      std::string repo, name, rev;
    };
    auto a = std::make_shared<Args>();
    auto* set = ref->add_subcommand("set", "Point REF at REV (creating it if missing)");
    set->add_option("repo", a->repo, "REPO")->required();
    set->add_option("ref", a->name, "refs/heads/X, refs/tags/X or refs/pr/N")->required();
    set->add_option("rev", a->rev, "Revision to point at")->required();
    auto* del = ref->add_subcommand("delete", "Delete REF");
    del->add_option("repo", a->repo, "REPO")->required();
    del->add_option("ref", a->name, "Ref name")->required();
    auto run = [a, &flags](bool remove) -> int {
      auto repo = store::RepoId::Parse(a->repo);
      if (!repo.ok()) return Fail(repo.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      GitOid target;
      if (!remove) {
        auto c = (*st)->Resolve(*repo, a->rev);
        if (!c.ok()) return Fail(c.status());
        target = *c;
      }
      auto current = (*st)->Resolve(*repo, a->name);
      GitOid expected = current.ok() && a->name.rfind("refs/", 0) == 0 ? *current : GitOid();
      Status s = (*st)->UpdateRef(*repo, a->name, expected, target);
      if (!s.ok()) return Fail(s);
      std::printf("%s %s\n", remove ? "deleted" : target.hex().c_str(), a->name.c_str());
      return 0;
    };
    out->push_back({set, [run] { return run(false); }});
    out->push_back({del, [run] { return run(true); }});
  }
  // tensors
  {
    auto* sub = app.add_subcommand("tensors", "The tensor index of REPO@REV[:PATH]");
    auto spec = std::make_shared<std::string>();
    sub->add_option("spec", *spec, "REPO[@REV][:PATH]")->required();
    out->push_back({sub, [spec, &flags]() -> int {
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto commit = (*st)->Resolve(rs->repo, rs->rev);
      if (!commit.ok()) return Fail(commit.status());
      auto files = (*st)->ListFiles(*commit);
      if (!files.ok()) return Fail(files.status());
      for (const auto& f : *files) {
        if (rs->path && f.path != *rs->path) continue;
        auto ts = (*st)->ListTensors(f);
        if (!ts.ok()) return Fail(ts.status());
        for (const auto& t : *ts) {
          std::string shape;
          for (size_t i = 0; i < t.shape.size(); ++i) shape += (i ? "," : "") + std::to_string(t.shape[i]);
          std::printf("%s\t%s\t%s\t[%s]\t%llu\t%llu\n", f.path.c_str(), t.name.c_str(), t.dtype.c_str(), shape.c_str(),
                      static_cast<unsigned long long>(t.begin), static_cast<unsigned long long>(t.end - t.begin));
        }
      }
      return 0;
    }});
  }
  // experts
  {
    auto* sub = app.add_subcommand("experts", "The expert index of REPO[@REV]: (layer, expert) -> tensors");
    auto spec = std::make_shared<std::string>();
    sub->add_option("repo", *spec, "REPO[@REV]")->required();
    out->push_back({sub, [spec, &flags]() -> int {
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto commit = (*st)->Resolve(rs->repo, rs->rev);
      if (!commit.ok()) return Fail(commit.status());
      auto idx = (*st)->GetExpertIndex(*commit);
      if (!idx.ok()) return Fail(idx.status());
      if (idx->empty()) std::printf("no experts (a dense model)\n");
      for (const auto& [k, parts] : *idx) {
        uint64_t bytes = 0;
        for (const auto& p : parts) bytes += p.length;
        std::printf("layer %u expert %s: %zu tensors, %s\n", k.layer, ExpertName(k).c_str(), parts.size(),
                    HumanBytes(bytes).c_str());
        for (const auto& p : parts) {
          std::printf("  %s\t%s\t%llu\t%llu\n", p.path.c_str(), p.tensor.c_str(),
                      static_cast<unsigned long long>(p.offset), static_cast<unsigned long long>(p.length));
        }
      }
      return 0;
    }});
  }
  // export
  {
    auto* sub = app.add_subcommand("export", "Write REPO[@REV] to a directory, byte-identical");
    auto spec = std::make_shared<std::string>();
    auto dir = std::make_shared<std::string>();
    sub->add_option("repo", *spec, "REPO[@REV]")->required();
    sub->add_option("dir", *dir, "Target directory (must not exist, or be empty)")->required();
    out->push_back({sub, [spec, dir, &flags]() -> int {
      auto rs = ParseRepoSpec(*spec);
      if (!rs.ok()) return Fail(rs.status());
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto commit = (*st)->Resolve(rs->repo, rs->rev);
      if (!commit.ok()) return Fail(commit.status());
      Status s = (*st)->Export(*commit, *dir);
      if (!s.ok()) return Fail(s);
      std::printf("exported %s@%s to %s\n", rs->repo.str().c_str(), commit->hex().c_str(), dir->c_str());
      return 0;
    }});
  }
  // stats
  {
    auto* sub = app.add_subcommand("stats", "What the store holds: logical vs stored bytes, dedup");
    auto as_json = std::make_shared<bool>(false);
    sub->add_flag("--json", *as_json, "Print JSON");
    out->push_back({sub, [as_json, &flags]() -> int {
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto s = (*st)->GetStats();
      if (!s.ok()) return Fail(s.status());
      double dedup = s->chunk_raw_bytes ? static_cast<double>(s->logical_bytes) / s->chunk_raw_bytes : 0;
      double comp = s->chunk_raw_bytes ? static_cast<double>(s->chunk_stored_bytes) / s->chunk_raw_bytes : 0;
      if (*as_json) {
        json j = {{"repos", s->repos}, {"refs", s->refs}, {"commits", s->commits}, {"trees", s->trees},
                  {"files", s->files}, {"chunks", s->chunks}, {"logical_bytes", s->logical_bytes},
                  {"file_bytes", s->file_bytes}, {"chunk_raw_bytes", s->chunk_raw_bytes},
                  {"chunk_stored_bytes", s->chunk_stored_bytes}, {"disk_bytes", s->disk_bytes},
                  {"chunks_by_codec", s->chunks_by_codec}, {"remote_chunks", s->remote_chunks},
                  {"remote_bytes", s->remote_bytes}, {"cached_chunks", s->cached_chunks},
                  {"cached_bytes", s->cached_bytes}, {"local_only_chunks", s->local_only_chunks},
                  {"local_only_bytes", s->local_only_bytes}};
        std::printf("%s\n", j.dump(2).c_str());
        return 0;
      }
      std::printf("repos %llu, refs %llu, commits %llu, distinct files %llu, chunks %llu\n",
                  static_cast<unsigned long long>(s->repos), static_cast<unsigned long long>(s->refs),
                  static_cast<unsigned long long>(s->commits), static_cast<unsigned long long>(s->files),
                  static_cast<unsigned long long>(s->chunks));
      std::printf("logical (all ref heads)  %s\n", HumanBytes(s->logical_bytes).c_str());
      std::printf("distinct file contents   %s\n", HumanBytes(s->file_bytes).c_str());
      std::printf("distinct chunks (raw)    %s   dedup %.2fx\n", HumanBytes(s->chunk_raw_bytes).c_str(), dedup);
      std::printf("stored (compressed)      %s   %.3f of raw\n", HumanBytes(s->chunk_stored_bytes).c_str(), comp);
      std::printf("on disk                  %s\n", HumanBytes(s->disk_bytes).c_str());
      if (s->remote_chunks > 0 || !flags.chunks.empty()) {
        std::printf("in the bucket            %s   %llu chunks\n", HumanBytes(s->remote_bytes).c_str(),
                    static_cast<unsigned long long>(s->remote_chunks));
        std::printf("  cached here            %s   %llu chunks\n", HumanBytes(s->cached_bytes).c_str(),
                    static_cast<unsigned long long>(s->cached_chunks));
        std::printf("local only (not pushed)  %s   %llu chunks\n", HumanBytes(s->local_only_bytes).c_str(),
                    static_cast<unsigned long long>(s->local_only_chunks));
      }
      for (const auto& [codec, n] : s->chunks_by_codec) {
        std::printf("  %-12s %llu chunks\n", codec.c_str(), static_cast<unsigned long long>(n));
      }
      return 0;
    }});
  }
  // gc
  {
    auto* sub = app.add_subcommand("gc", "Delete what no ref reaches");
    out->push_back({sub, [&flags]() -> int {
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto r = (*st)->CollectGarbage();
      if (!r.ok()) return Fail(r.status());
      // Parts of multipart uploads never completed: the store is ours alone now (no server runs),
      // so no upload is in flight.
      std::error_code ec;
      uintmax_t parts = std::filesystem::remove_all(flags.data_dir + "/uploads", ec);
      if (parts > 1 && !ec) std::printf("deleted %ju leftovers of unfinished multipart uploads\n", parts - 1);
      // Raw copies of files the store no longer holds.
      uint64_t dropped = 0;
      for (const auto& e : std::filesystem::directory_iterator(flags.data_dir + "/rawcache", ec)) {
        auto digest = Sha256Digest::FromHex(e.path().filename().string());
        std::error_code fec;
        auto held = digest.ok() ? (*st)->HasContent(*digest, e.file_size(fec)) : Result<bool>(false);
        if (!held.ok() || !*held) dropped += std::filesystem::remove(e.path(), fec) ? 1 : 0;
      }
      if (dropped > 0) std::printf("deleted %llu raw-cache copies of files no longer held\n", (unsigned long long)dropped);
      std::printf("deleted %llu chunks (%s), %llu objects, %llu file records; kept %llu chunks\n",
                  static_cast<unsigned long long>(r->chunks_deleted), HumanBytes(r->bytes_freed).c_str(),
                  static_cast<unsigned long long>(r->objects_deleted), static_cast<unsigned long long>(r->files_deleted),
                  static_cast<unsigned long long>(r->chunks_kept));
      if (r->mark_passes > 1) std::printf("chunks marked in %u passes (more live chunks than one pass holds)\n", r->mark_passes);
      if (r->packs_deleted > 0 || r->packs_rewritten > 0) {
        std::printf("packs: deleted %llu, rewrote %llu; freed %s in the bucket\n",
                    static_cast<unsigned long long>(r->packs_deleted),
                    static_cast<unsigned long long>(r->packs_rewritten), HumanBytes(r->pack_bytes_freed).c_str());
      }
      if (r->manifests_written > 0) {
        std::printf("manifests: wrote %llu (chunk locations for new readers)\n",
                    static_cast<unsigned long long>(r->manifests_written));
      }
      return 0;
    }});
  }
  // tier push
  {
    auto* tier = app.add_subcommand("tier", "The chunk tier: chunk payloads in an S3-compatible bucket (--chunks)");
    tier->require_subcommand(1);
    auto* init = tier->add_subcommand("init", "Create the bucket --chunks names (nothing when it exists and is ours)");
    out->push_back({init, [&flags]() -> int {
      if (flags.chunks.empty()) return Fail(InvalidArgumentError("tier init needs --chunks s3://bucket/prefix"));
      Status s = s3::CreateBucketFor(flags.chunks);
      if (!s.ok()) return Fail(s);
      std::printf("bucket of %s ready\n", flags.chunks.c_str());
      return 0;
    }});
    {
      auto* claim = tier->add_subcommand("claim", "Make this store the one writer of --chunks (a writer claims it at its "
                                                  "first upload; --force takes it from another store)");
      auto force = std::make_shared<bool>(false);
      claim->add_flag("--force", *force,
                      "Take the bucket prefix over from the store that holds it (promoting a reader: stop that writer "
                      "for good first)");
      out->push_back({claim, [&flags, force]() -> int {
        if (flags.chunks.empty()) return Fail(InvalidArgumentError("tier claim needs --chunks s3://bucket/prefix"));
        auto st = OpenStore(flags);
        if (!st.ok()) return Fail(st.status());
        Status s = (*st)->ClaimTier(*force);
        if (!s.ok()) return Fail(s);
        std::printf("this store (%s) is the writer of %s\n", flags.data_dir.c_str(), flags.chunks.c_str());
        return 0;
      }});
    }
    auto* sub = tier->add_subcommand("push", "Move the chunks held only here into packs in the bucket; keep at most "
                                             "--chunk-cache of them here");
    out->push_back({sub, [&flags]() -> int {
      if (flags.chunks.empty()) return Fail(InvalidArgumentError("tier push needs --chunks s3://bucket/prefix"));
      auto st = OpenStore(flags);
      if (!st.ok()) return Fail(st.status());
      auto r = (*st)->PushToTier();
      if (!r.ok()) return Fail(r.status());
      std::printf("pushed %llu chunks (%s) in %llu packs to %s; dropped %llu local copies past the cache bound\n",
                  static_cast<unsigned long long>(r->chunks), HumanBytes(r->bytes).c_str(),
                  static_cast<unsigned long long>(r->packs), flags.chunks.c_str(),
                  static_cast<unsigned long long>(r->evicted_chunks));
      return 0;
    }});
  }
}

}  // namespace hubnode::hub
