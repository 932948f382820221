#include "store/db.h"

#include <rocksdb/db.h>
#include <rocksdb/options.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/options_util.h>
#include <rocksdb/write_batch.h>

#include <filesystem>
#include <vector>

namespace hubnode::store {
namespace {

constexpr const char* kCfNames[] = {"default", "chunks", "chunk_meta", "files",
                                    "objects", "refs",   "repos",      "experts"};
static_assert(std::size(kCfNames) == static_cast<size_t>(Cf::kCount));

Status FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return OkStatus();
  std::string m = std::string(what) + ": " + s.ToString();
  if (s.IsNotFound()) return NotFoundError(m);
  if (s.IsCorruption()) return DataLossError(m);
  if (s.IsNoSpace()) return ResourceExhaustedError(m);
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

}  // namespace

struct Db::Rep {
  std::unique_ptr<rocksdb::DB> db;
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  std::string path;
  ~Rep() {
    // Flush memtables on close, so the next open does not replay the WAL (after a 1 GB import,
    // replaying it took most of a second for every later command).
    if (db) db->Flush(rocksdb::FlushOptions(), handles).PermitUncheckedError();
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

Result<std::unique_ptr<Db>> Db::Open(const std::string& path) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return InternalError("cannot create " + path + ": " + ec.message());

  rocksdb::DBOptions dbo;
  dbo.create_if_missing = true;
  dbo.create_missing_column_families = true;
  dbo.paranoid_checks = true;
  dbo.track_and_verify_wals_in_manifest = true;
  dbo.max_background_jobs = 2;
  dbo.max_total_wal_size = 512 << 20;

  std::vector<rocksdb::ColumnFamilyDescriptor> cfs;
  for (int i = 0; i < static_cast<int>(Cf::kCount); ++i) {
    cfs.emplace_back(kCfNames[i], CfOptions(static_cast<Cf>(i)));
  }
  auto rep = std::make_unique<Rep>();
  rep->path = path;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(dbo, path, cfs, &rep->handles, &raw);
  if (!s.ok()) return FromRocks(s, "cannot open store at " + path);
  rep->db.reset(raw);
  return std::unique_ptr<Db>(new Db(std::move(rep)));
}

Result<std::optional<std::string>> Db::Get(Cf cf, std::string_view key) const {
  std::string value;
  rocksdb::Status s = rep_->db->Get(rocksdb::ReadOptions(), rep_->cf(cf), rocksdb::Slice(key.data(), key.size()), &value);
  if (s.IsNotFound()) return std::optional<std::string>();
  RETURN_IF_ERROR(FromRocks(s, "store read"));
  return std::optional<std::string>(std::move(value));
}

Result<bool> Db::Has(Cf cf, std::string_view key) const {
  ASSIGN_OR_RETURN(auto v, Get(cf, key));
  return v.has_value();
}

Status Db::Write(Batch& batch, bool sync) {
  rocksdb::WriteOptions wo;
  wo.sync = sync;
  return FromRocks(rep_->db->Write(wo, &batch.rep_->wb), "store write");
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
