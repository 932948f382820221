#include "store/chunk_writer.h"

namespace hubnode::store {

void TaskGroup::Add() {
  std::lock_guard<std::mutex> lock(mu_);
  ++pending_;
}

void TaskGroup::Done(Status s) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!s.ok() && status_.ok()) status_ = std::move(s);
  if (--pending_ == 0) cv_.notify_all();
}

bool TaskGroup::failed() {
  std::lock_guard<std::mutex> lock(mu_);
  return !status_.ok();
}

Status TaskGroup::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [this] { return pending_ == 0; });
  return status_;
}

ChunkWriter::ChunkWriter(StoreImpl& store) : store_(store) {
  const Options& o = store.options();
  policy_ = !o.compress ? CodecPolicy::kRawOnly : o.byte_grouping ? CodecPolicy::kAuto : CodecPolicy::kZstdOnly;
}

ChunkWriter::~ChunkWriter() { store_.pins().UnpinAll(pinned_); }

ChunkCounts ChunkWriter::counts() {
  std::lock_guard<std::mutex> lock(mu_);
  return counts_;
}

Status ChunkWriter::AddInOrder(uint64_t seq, std::optional<Pending> chunk) {
  std::vector<PackBuilder> full;
  {
    std::lock_guard<std::mutex> lock(pack_mu_);
    reorder_.emplace(seq, std::move(chunk));
    while (!reorder_.empty() && reorder_.begin()->first == next_seq_) {
      auto& c = reorder_.begin()->second;
      if (c) pack_.Add(c->id, c->meta, c->record);
      reorder_.erase(reorder_.begin());
      ++next_seq_;
      if (pack_.bytes() >= store_.options().pack_bytes) {
        full.push_back(std::move(pack_));
        pack_ = PackBuilder();
      }
    }
  }
  Status s = OkStatus();
  for (auto& p : full) {
    Status u = Upload(std::move(p));
    if (s.ok()) s = std::move(u);
  }
  return s;
}

void ChunkWriter::Write(const std::string& data, ElementKind kind, ChunkRef* slot, TaskGroup* group, uint64_t seq) {
  ChunkId id = ChunkIdOf(data);
  slot->id = id;
  slot->raw_len = static_cast<uint32_t>(data.size());
  // Pin before looking: once pinned, GC cannot delete the chunk between our check and our commit.
  {
    // A chunk that repeats within one import is written (and counted) once.
    std::unique_lock<std::mutex> lock(mu_);
    if (!seen_.insert(id).second) {
      lock.unlock();
      if (store_.tier()) AddInOrder(seq, std::nullopt).IgnoreError();  // no record: nothing to upload
      return group->Done(OkStatus());
    }
    pinned_.push_back(id);
  }
  store_.pins().Pin(id);
  auto has = store_.db().Has(Cf::kChunkMeta, id.view());
  if (!has.ok() || *has) {
    if (store_.tier()) AddInOrder(seq, std::nullopt).IgnoreError();
    return group->Done(has.status());
  }
  EncodedChunk enc = EncodeChunk(data, kind, policy_, store_.options().zstd_level);
  uint32_t stored = static_cast<uint32_t>(enc.record.size() - kChunkRecordHeader);
  if (store_.tier()) {
    // Tiered: the record goes into a pack, in the order the chunks were submitted (a file's
    // chunks then lie in order, and a download reads several with one GET); the chunk is recorded
    // once its pack is uploaded.
    return group->Done(AddInOrder(seq, Pending{id, ChunkMeta{enc.codec, slot->raw_len, stored}, std::move(enc.record)}));
  }
  auto batch = store_.db().NewBatch();
  batch.Put(Cf::kChunks, id.view(), enc.record);
  batch.Put(Cf::kChunkMeta, id.view(), EncodeChunkMeta(ChunkMeta{enc.codec, slot->raw_len, stored}));
  Status s = store_.db().Write(batch, /*sync=*/false);
  if (s.ok()) {
    std::lock_guard<std::mutex> lock(mu_);
    ++counts_.new_chunks;
    counts_.new_raw_bytes += data.size();
    counts_.new_stored_bytes += stored;
  }
  group->Done(std::move(s));
}

Status ChunkWriter::Upload(PackBuilder pack) {
  ChunkCounts c;
  for (const auto& e : pack.entries()) {
    ++c.new_chunks;
    c.new_raw_bytes += e.meta.raw_len;
    c.new_stored_bytes += e.meta.stored_len;
  }
  RETURN_IF_ERROR(store_.UploadPack(std::move(pack)));
  std::lock_guard<std::mutex> lock(mu_);
  counts_.new_chunks += c.new_chunks;
  counts_.new_raw_bytes += c.new_raw_bytes;
  counts_.new_stored_bytes += c.new_stored_bytes;
  return OkStatus();
}

Status ChunkWriter::Flush() {
  std::unique_lock<std::mutex> lock(pack_mu_);
  if (pack_.empty()) return OkStatus();
  PackBuilder last = std::move(pack_);
  pack_ = PackBuilder();
  lock.unlock();
  return Upload(std::move(last));
}

void ChunkWriter::Submit(std::shared_ptr<std::string> data, ElementKind kind, ChunkRef* slot, TaskGroup* group) {
  group->Add();
  const uint64_t seq = next_submit_++;
  store_.pool().Submit([this, data, kind, slot, group, seq] { Write(*data, kind, slot, group, seq); });
}

}  // namespace hubnode::store
