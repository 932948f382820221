#include "store/db.h"

#include <rocksdb/db.h>
#include <rocksdb/env.h>
#include <rocksdb/options.h>
#include <rocksdb/sst_file_manager.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/utilities/backup_engine.h>
#include <rocksdb/write_batch.h>
#include <fcntl.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cstdarg>
#include <cstdio>
#include <filesystem>
#include <vector>

#include "base/log.h"

namespace hubnode::store {
namespace {

constexpr const char* kCfNames[] = {"default", "chunks", "chunk_meta", "files",
                                    "objects", "refs",   "repos",      "experts"};
static_assert(std::size(kCfNames) == static_cast<size_t>(Cf::kCount));

// RocksDB's messages name files of the data directory: they are logged, and the Status says what
// happened without them (it may reach an HTTP client).
Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return OkStatus();
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return NotFoundError(m);
  if (s.IsCorruption()) {
    LOG(Error) << m;
    return DataLossError(std::string(what) + ": the store's data is damaged (run hubnode fsck)");
  }
  if (s.IsNoSpace()) {
    LOG(Error) << m;
    return ResourceExhaustedError(std::string(what) + ": no space left on the store's disk");
  }
  if (s.IsIOError() && s.ToString().find("lock") != std::string::npos) {
    return UnavailableError(m + " (is another hubnode process using this data directory?)");
  }
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return UnavailableError(m);
  return InternalError(m);
}

rocksdb::ColumnFamilyOptions CfOptions(Cf cf) {
  rocksdb::ColumnFamilyOptions o;
  o.write_buffer_size = 64 << 20;
  if (cf == Cf::kChunks) {
    // Chunks arrive compressed by us (codec byte); RocksDB must not compress them again.
    o.compression = rocksdb::kNoCompression;
    o.enable_blob_files = true;
    o.min_blob_size = 4096;
    o.blob_file_size = 256 << 20;
    o.blob_compression_type = rocksdb::kNoCompression;
    o.enable_blob_garbage_collection = true;
    o.blob_garbage_collection_age_cutoff = 0.25;
    // Values reach the memtable whole and move to blob files at flush, so the memtable bounds
    // the memory an import or upload holds: 64 MiB, two of them while one flushes.
    o.write_buffer_size = 64 << 20;
    o.max_write_buffer_number = 2;
  } else {
    o.compression = rocksdb::kZSTD;
  }
  return o;
}

uint64_t FreeBytesAt(const std::string& path) {
  struct statvfs v {};
  std::string p = path;
  while (::statvfs(p.c_str(), &v) != 0) {  // the directory may not exist yet: ask its parent
    const auto parent = std::filesystem::path(p).parent_path().string();
    if (parent.empty() || parent == p) return 0;
    p = parent;
  }
  return static_cast<uint64_t>(v.f_bavail) * v.f_frsize;
}

// Bytes of the write-ahead logs: what a read-write open replays and then flushes.
uint64_t WalBytes(const std::string& path) {
  uint64_t n = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(path, ec)) {
    if (e.path().extension() == ".log") n += e.file_size(ec);
  }
  return n;
}

std::string Mib(uint64_t n) { return std::to_string(n >> 20) + " MiB"; }

constexpr uint64_t kReserveBytes = 8 << 20;

// RocksDB's own log, sent to hubnode's (warnings and errors only) instead of a LOG file in the
// data directory: Debian's RocksDB asserts on a write to its log file after one failed, so a disk
// filling up must never reach that file.
class RocksLogger final : public rocksdb::Logger {
 public:
  RocksLogger() : rocksdb::Logger(rocksdb::InfoLogLevel::WARN_LEVEL) {}
  using rocksdb::Logger::Logv;
  void Logv(const char* format, va_list ap) override { Logv(rocksdb::InfoLogLevel::WARN_LEVEL, format, ap); }
  void Logv(const rocksdb::InfoLogLevel level, const char* format, va_list ap) override {
    if (level < GetInfoLogLevel()) return;
    char line[1024];
    std::vsnprintf(line, sizeof line, format, ap);
    // RocksDB warns of routine things (a backup disabling file deletions twice): info for us.
    if (level >= rocksdb::InfoLogLevel::ERROR_LEVEL) {
      LOG(Error) << "rocksdb: " << line;
    } else {
      LOG(Info) << "rocksdb: " << line;
    }
  }
};

uint32_t LatestBackupId(rocksdb::BackupEngineReadOnly& engine) {
  std::vector<rocksdb::BackupInfo> infos;
  engine.GetBackupInfo(&infos);
  uint32_t id = 0;
  for (const auto& i : infos) id = std::max(id, i.backup_id);
  return id;
}

}  // namespace

struct Db::Rep {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::string path;
  uint64_t min_free = 0;
  bool read_only = false;
  uint64_t MemtableBytes() const {
    uint64_t n = 0;
    if (db) db->GetAggregatedIntProperty("rocksdb.cur-size-all-mem-tables", &n);
    return n;
  }
  // A reserve file beside the database, given back to the file system when the disk is full, so
  // RocksDB always has room to finish what it started (its manifest and logs at close).
  std::string reserve_path() const { return path + ".reserve"; }
  void Release() const {
    std::error_code ec;
    if (FreeBytesAt(path) < kReserveBytes * 2) std::filesystem::remove(reserve_path(), ec);
  }
  ~Rep() {
    if (db && !read_only) Release();
    // Flush memtables on close, so the next open does not replay the WAL (after a 1 GB import,
    // replaying it took most of a second for every later command) — when the disk has room for
    // it: a failed flush would leave RocksDB erroring at close.
    if (db && !read_only && FreeBytesAt(path) > 2 * MemtableBytes() + (16u << 20)) {
      db->Flush(rocksdb::FlushOptions(), handles).PermitUncheckedError();
    }
    for (auto* h : handles) {
      if (db && h) db->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    }
    if (db) db->Close().PermitUncheckedError();
  }
  rocksdb::ColumnFamilyHandle* cf(Cf c) const { return handles[static_cast<int>(c)]; }
};

struct Db::Batch::Rep {
  rocksdb::WriteBatch wb;
  const Db::Rep* db;
};

Db::Batch::Batch(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Db::Batch::~Batch() = default;
Db::Batch::Batch(Batch&&) noexcept = default;
Db::Batch& Db::Batch::operator=(Batch&&) noexcept = default;
size_t Db::Batch::Count() const { return rep_->wb.Count(); }

void Db::Batch::Put(Cf cf, std::string_view key, std::string_view value) {
  rep_->wb.Put(rep_->db->cf(cf), rocksdb::Slice(key.data(), key.size()),
               rocksdb::Slice(value.data(), value.size())).PermitUncheckedError();
}

void Db::Batch::Delete(Cf cf, std::string_view key) {
  rep_->wb.Delete(rep_->db->cf(cf), rocksdb::Slice(key.data(), key.size())).PermitUncheckedError();
}

Db::Batch Db::NewBatch() const {
  auto rep = std::make_unique<Batch::Rep>();
  rep->db = rep_.get();
  return Batch(std::move(rep));
}

Db::Db(std::unique_ptr<Rep> rep) : rep_(std::move(rep)) {}
Db::~Db() = default;

Result<std::unique_ptr<Db>> Db::Open(const std::string& path, const OpenOptions& options) {
  std::error_code ec;
  bool read_only = options.read_only;
  // Opening read-write writes a log, a manifest and an options file, and flushes what the old
  // log held: with less room than that (and a margin), open read-only so reads keep working.
  const uint64_t free = FreeBytesAt(path);
  const uint64_t open_need = WalBytes(path) + (16u << 20);
  if (!read_only && free < open_need && std::filesystem::exists(path + "/CURRENT", ec)) {
    LOG(Warning) << "the store's disk has " << Mib(free) << " free (opening it for writing needs " << Mib(open_need)
                 << "): opened read-only; writes are refused until it is reopened with more room";
    read_only = true;
  }
  if (!read_only) {
    std::filesystem::create_directories(path, ec);
    if (ec) return InternalError("cannot create " + path + ": " + ec.message());
  }

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.paranoid_checks = true;
  dbo.track_and_verify_wals_in_manifest = true;
  dbo.max_background_jobs = 2;
  dbo.max_total_wal_size = 512 << 20;
  // No flush inside Close(): ~Rep flushes when the disk has room for it; otherwise the log keeps
  // the data for the next open (a flush failing for want of space would abort in Close).
  dbo.avoid_flush_during_shutdown = true;
  dbo.info_log = std::make_shared<RocksLogger>();
  dbo.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  // Lets RocksDB recover by itself from an out-of-space error once space is back.
  dbo.sst_file_manager.reset(rocksdb::NewSstFileManager(rocksdb::Env::Default()));

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    cfs.emplace_back(kCfNames[i], CfOptions(static_cast<Cf>(i)));
  }
  auto rep = std::make_unique<Rep>();
  rep->path = path;
  rep->min_free = options.min_free_bytes;
  rep->read_only = read_only;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = read_only ? rocksdb::DB::OpenForReadOnly(dbo, path, cfs, &rep->handles, &raw)
                                : rocksdb::DB::Open(dbo, path, cfs, &rep->handles, &raw);
  if (!s.ok()) return FromRocks(s, "cannot open store at " + path);
  rep->db.reset(raw);
  if (!read_only && !std::filesystem::exists(rep->reserve_path(), ec) && FreeBytesAt(path) > 4 * kReserveBytes) {
    const int fd = ::open(rep->reserve_path().c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) {
      if (::posix_fallocate(fd, 0, static_cast<off_t>(kReserveBytes)) != 0) {
        ::close(fd);
        std::filesystem::remove(rep->reserve_path(), ec);
      } else {
        ::close(fd);
      }
    }
  }
  return std::unique_ptr<Db>(new Db(std::move(rep)));
}

Result<std::optional<std::string>> Db::Get(Cf cf, std::string_view key) const {
  std::string value;
  rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), rep_->cf(cf), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "store read"));
  return std::optional<std::string>(std::move(value));
}

Result<std::optional<std::string>> Db::GetUnchecked(Cf cf, std::string_view key) const {
  std::string value;
  rocksdb::ReadOptions ro;
  ro.verify_checksums = false;
  rocksdb::Status s = rep_->db->Get(ro, rep_->cf(cf), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "store read"));
  return std::optional<std::string>(std::move(value));
}

Result<bool> Db::Has(Cf cf, std::string_view key) const {
  ASSIGN_OR_RETURN(auto v, Get(cf, key));
  return v.has_value();
}

bool Db::read_only() const { return rep_->read_only; }

uint64_t Db::FreeBytes() const { return FreeBytesAt(rep_->path); }

Status Db::Write(Batch& batch, bool sync) {
  if (rep_->read_only) {
    return ResourceExhaustedError("the store is open read-only: its disk was nearly full when it was opened");
  }
  // The write goes to the log now and to a blob or table file at the next flush, with what the
  // memtables already hold: all of it must fit beside the reserve.
  const uint64_t size = batch.rep_->wb.GetDataSize();
  const uint64_t need = 2 * size + rep_->MemtableBytes() + rep_->min_free;
  const uint64_t free = FreeBytes();
  if (free < need) {
    rep_->Release();  // room for RocksDB to finish what it has in hand
    return ResourceExhaustedError("not enough disk space for the store: " + Mib(free) + " free, and this write needs " +
                                  Mib(need - rep_->min_free) + " beside the " + Mib(rep_->min_free) +
                                  " the store keeps free for its own work");
  }
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  rocksdb::Status s = rep_->db->Write(wo, &batch.rep_->wb);
  if (s.IsNoSpace() || (s.IsIOError() && !s.ok())) {
    // Someone else filled the disk between the check and the write: let RocksDB resume once
    // space is back (the sst file manager retries too).
    rep_->db->Resume().PermitUncheckedError();
  }
  return FromRocks(s, "store write");
}

Result<uint32_t> Db::Backup(const std::string& dir) {
  rocksdb::BackupEngine* raw = nullptr;
  rocksdb::IOStatus s = rocksdb::BackupEngine::Open(rocksdb::Env::Default(), rocksdb::BackupEngineOptions(dir), &raw);
  if (!s.ok()) return FromRocks(s, "cannot open the backup at " + dir);
  std::unique_ptr<rocksdb::BackupEngine> engine(raw);
  rocksdb::CreateBackupOptions o;
  o.flush_before_backup = !rep_->read_only;
  RETURN_IF_ERROR(FromRocks(engine->CreateNewBackup(o, rep_->db.get()), "backup"));
  std::vector<rocksdb::BackupInfo> infos;
  engine->GetBackupInfo(&infos);
  if (infos.empty()) return InternalError("backup: none recorded");
  return infos.back().backup_id;
}

Status Db::Restore(const std::string& backup_dir, const std::string& path) {
  std::error_code ec;
  if (std::filesystem::exists(path + "/CURRENT", ec)) {
    return AlreadyExistsError("a store already exists at " + path + ": restore into an empty data directory");
  }
  rocksdb::BackupEngineReadOnly* raw = nullptr;
  rocksdb::IOStatus s =
      rocksdb::BackupEngineReadOnly::Open(rocksdb::Env::Default(), rocksdb::BackupEngineOptions(backup_dir), &raw);
  if (!s.ok()) return FromRocks(s, "cannot open the backup at " + backup_dir);
  std::unique_ptr<rocksdb::BackupEngineReadOnly> engine(raw);
  const uint32_t latest = LatestBackupId(*engine);
  if (latest == 0) return NotFoundError("no backup in " + backup_dir);
  RETURN_IF_ERROR(FromRocks(engine->VerifyBackup(latest, /*verify_with_checksum=*/true), "the backup is damaged"));
  return FromRocks(engine->RestoreDBFromLatestBackup(path, path), "restore");
}

Status Db::Scan(Cf cf, std::string_view prefix,
                const std::function<bool(std::string_view, std::string_view)>& fn) const {
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(rep_->db->NewIterator(ro, rep_->cf(cf)));
  for (it->Seek(rocksdb::Slice(prefix.data(), prefix.size())); it->Valid(); it->Next()) {
    rocksdb::Slice k = it->key();
    std::string_view key(k.data(), k.size());
    if (key.substr(0, prefix.size()) != prefix) break;
    rocksdb::Slice v = it->value();
    if (!fn(key, std::string_view(v.data(), v.size()))) break;
  }
  return FromRocks(it->status(), "store scan");
}

uint64_t Db::DiskBytes() const {
  uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : std::filesystem::recursive_directory_iterator(rep_->path, ec)) {
    if (e.is_regular_file(ec)) total += e.file_size(ec);
  }
  return total;
}

Status Db::Compact() {
  for (auto* h : rep_->handles) {
    RETURN_IF_ERROR(FromRocks(rep_->db->Flush(rocksdb::FlushOptions(), h), "flush"));
    rocksdb::CompactRangeOptions o;
    o.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    RETURN_IF_ERROR(FromRocks(rep_->db->CompactRange(o, h, nullptr, nullptr), "compact"));
  }
  return OkStatus();
}

}  // namespace hubnode::store
