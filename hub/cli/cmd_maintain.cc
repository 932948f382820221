// fsck, backup, restore: checking a store, repairing it from peers, and copying it away and back.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "base/file.h"
#include "hub/cli/commands.h"
#include "hub/peer/chunk_maps.h"
#include "hub/peer/peer_fetch.h"

namespace hubnode::hub {
namespace {

namespace fs = std::filesystem;

// The data directory's files beside the database a backup carries: tokens, the trust store, the
// node's identity key and the upload URL key (kept 0600).
constexpr const char* kDataFiles[] = {"tokens.json", "trust.json", "node.key", "node.key.pub", "upload.key"};

Status CopyFile(const fs::path& from, const fs::path& to) {
  ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(from.string(), 64 << 20));
  RETURN_IF_ERROR(WriteFileAtomic(to.string(), bytes));
  struct stat st {};
  if (::stat(from.c_str(), &st) == 0) ::chmod(to.c_str(), st.st_mode & 0777);
  return OkStatus();
}

int Fsck(const GlobalFlags& flags, bool repair, const std::vector<std::string>& peers, bool as_json) {
  if (repair && peers.empty()) return Fail(InvalidArgumentError("--repair needs --peer URL: a damaged chunk comes back from a peer"));
  auto st = OpenStore(flags);
  if (!st.ok()) return Fail(st.status());
  if (!peers.empty()) {
    // A chunk is asked for by id alone, so the request is signed: the peers must trust this node.
    PeerFetchOptions pf;
    pf.peers = peers;
    auto key = LoadOrCreateNodeKey(flags.data_dir);
    if (!key.ok()) return Fail(key.status());
    pf.node_key = *key;
    (*st)->SetChunkSource(PeerChunkSource(std::make_shared<ChunkFetcher>(pf)));
  }
  ProgressBar bar(!flags.quiet && !as_json);
  store::FsckOptions o;
  o.repair = repair;
  o.progress = [&](uint64_t done, uint64_t total) { bar.Update(done, total, "checking chunks"); };
  auto r = (*st)->Fsck(o);
  bar.Finish();
  if (!r.ok()) return Fail(r.status());
  if (as_json) {
    nlohmann::json damaged = nlohmann::json::array(), repaired = nlohmann::json::array();
    for (const auto& id : r->damaged_chunks) damaged.push_back(id.hex());
    for (const auto& id : r->repaired) repaired.push_back(id.hex());
    std::printf("%s\n", nlohmann::json{{"chunks", r->chunks}, {"chunkBytes", r->chunk_bytes}, {"objects", r->objects},
                                       {"files", r->files}, {"damagedChunks", damaged}, {"repaired", repaired},
                                       {"damagedObjects", r->damaged_objects}, {"damagedFiles", r->damaged_files},
                                       {"missingChunks", r->missing_chunks}, {"clean", r->clean()}}
                            .dump()
                            .c_str());
  } else {
    std::printf("checked %llu chunks (%s), %llu objects, %llu file records\n",
                static_cast<unsigned long long>(r->chunks), HumanBytes(r->chunk_bytes).c_str(),
                static_cast<unsigned long long>(r->objects), static_cast<unsigned long long>(r->files));
    for (const auto& id : r->damaged_chunks) std::printf("damaged chunk %s\n", id.hex().c_str());
    for (const auto& id : r->repaired) std::printf("repaired chunk %s (a verified copy from a peer)\n", id.hex().c_str());
    for (const auto& o : r->damaged_objects) std::printf("damaged object %s\n", o.c_str());
    for (const auto& f : r->damaged_files) std::printf("damaged file record %s\n", f.c_str());
    if (r->missing_chunks) {
      std::printf("%llu chunks referenced but not held (a partly held model; fetched from peers when read)\n",
                  static_cast<unsigned long long>(r->missing_chunks));
    }
    std::printf("%s\n", r->clean() ? "clean" : "DAMAGED: run hubnode fsck --repair --peer URL");
  }
  return r->clean() ? 0 : 1;
}

int Backup(const GlobalFlags& flags, const std::string& dir) {
  auto st = OpenStore(flags);
  if (!st.ok()) return Fail(st.status());
  std::error_code ec;
  fs::create_directories(fs::path(dir) / "files", ec);
  if (ec) return Fail(InternalError("cannot create " + dir + ": " + ec.message()));
  auto id = (*st)->Backup((fs::path(dir) / "db").string());
  if (!id.ok()) return Fail(id.status());
  size_t copied = 0;
  for (const char* f : kDataFiles) {
    const fs::path from = fs::path(flags.data_dir) / f;
    if (!fs::exists(from, ec)) continue;
    if (Status s = CopyFile(from, fs::path(dir) / "files" / f); !s.ok()) return Fail(s);
    ++copied;
  }
  std::printf("backup %u of %s in %s (and %zu data files)\n", *id, flags.data_dir.c_str(), dir.c_str(), copied);
  return 0;
}

int Restore(const GlobalFlags& flags, const std::string& dir) {
  std::error_code ec;
  if (fs::exists(fs::path(flags.data_dir) / "db", ec) && !fs::is_empty(fs::path(flags.data_dir) / "db", ec)) {
    return Fail(AlreadyExistsError(flags.data_dir + " already holds a store: restore into a new data directory"));
  }
  fs::create_directories(flags.data_dir, ec);
  if (Status s = store::Store::Restore((fs::path(dir) / "db").string(), flags.data_dir); !s.ok()) return Fail(s);
  size_t copied = 0;
  for (const char* f : kDataFiles) {
    const fs::path from = fs::path(dir) / "files" / f;
    if (!fs::exists(from, ec)) continue;
    if (Status s = CopyFile(from, fs::path(flags.data_dir) / f); !s.ok()) return Fail(s);
    ++copied;
  }
  auto st = OpenStore(flags);  // it opens, and its format is this hubnode's
  if (!st.ok()) return Fail(st.status());
  std::printf("restored %s from %s (and %zu data files)\n", flags.data_dir.c_str(), dir.c_str(), copied);
  return 0;
}

}  // namespace

void AddMaintainCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out) {
  {
    auto* sub = app.add_subcommand("fsck", "Re-read and re-hash every chunk, object and file record; repair from peers");
    struct Args {
      bool repair = false, as_json = false;
      std::vector<std::string> peers;
    };
    auto a = std::make_shared<Args>();
    sub->add_flag("--repair", a->repair, "Replace damaged chunks with verified copies from --peer");
    sub->add_option("--peer", a->peers, "A hubnode that holds the chunks and trusts this node's key (repeatable)");
    sub->add_flag("--json", a->as_json, "Print the report as JSON");
    out->push_back({sub, [a, &flags] { return Fsck(flags, a->repair, a->peers, a->as_json); }});
  }
  {
    auto* sub = app.add_subcommand("backup", "Copy the store (incrementally) and the data directory's keys into DIR");
    auto dir = std::make_shared<std::string>();
    sub->add_option("dir", *dir, "Backup directory (created; later backups into it copy only what is new)")->required();
    out->push_back({sub, [dir, &flags] { return Backup(flags, *dir); }});
  }
  {
    auto* sub = app.add_subcommand("restore", "Restore the latest backup in DIR into a new data directory (--data)");
    auto dir = std::make_shared<std::string>();
    sub->add_option("dir", *dir, "Backup directory")->required()->check(CLI::ExistingDirectory);
    out->push_back({sub, [dir, &flags] { return Restore(flags, *dir); }});
  }
}

}  // namespace hubnode::hub
