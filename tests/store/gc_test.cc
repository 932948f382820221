#include <condition_variable>
#include <thread>

#include "store/store.h"
#include "testmodel/testmodel.h"
#include "tests/testutil/testutil.h"

namespace hubnode::store {
namespace {

using hubnode::testing::ReadTree;
using hubnode::testing::TempDir;
namespace tm = hubnode::testmodel;

std::string Model(const TempDir& dir, const std::string& name, uint64_t seed) {
  tm::Options o;
  o.seed = seed;
  EXPECT_OK(tm::Generate(o, dir / name).status());
  return dir / name;
}

TEST(GcTest, KeepsReferencedDropsUnreferenced) {
  TempDir dir;
  Options o;
  o.data_dir = dir / "data";
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  auto keep = *RepoId::Parse("gc/keep"), drop = *RepoId::Parse("gc/drop");
  std::string a = Model(dir, "a", 1), b = Model(dir, "b", 2);
  ASSERT_OK_AND_ASSIGN(ImportResult ra, store->ImportDirectory(a, keep, ImportOptions()));
  ASSERT_OK_AND_ASSIGN(ImportResult rb, store->ImportDirectory(b, drop, ImportOptions()));
  ASSERT_OK_AND_ASSIGN(Stats before, store->GetStats());

  ASSERT_OK_AND_ASSIGN(GcResult nothing, store->CollectGarbage());
  EXPECT_EQ(nothing.chunks_deleted, 0u);
  EXPECT_EQ(nothing.objects_deleted, 0u);

  ASSERT_OK(store->UpdateRef(drop, "refs/heads/main", rb.commit, GitOid()));
  ASSERT_OK_AND_ASSIGN(GcResult gc, store->CollectGarbage());
  ASSERT_OK_AND_ASSIGN(Stats after, store->GetStats());
  // b shares its tokenizer, config and card chunks with a; only its own chunks go.
  EXPECT_GT(gc.chunks_deleted, 0u);
  EXPECT_EQ(after.chunks, before.chunks - gc.chunks_deleted);
  EXPECT_EQ(after.chunks, gc.chunks_kept);
  EXPECT_EQ(store->GetCommit(rb.commit).status().code(), StatusCode::kNotFound);
  // What is referenced still exports byte-exact.
  ASSERT_OK(store->Export(ra.commit, dir / "out"));
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(a));
  // A second GC finds nothing more.
  ASSERT_OK_AND_ASSIGN(GcResult again, store->CollectGarbage());
  EXPECT_EQ(again.chunks_deleted, 0u);
}

// A GC that runs while an import is between writing its chunks and committing must not delete
// those chunks.
TEST(GcTest, NeverDeletesChunksOfAnImportInFlight) {
  TempDir dir;
  Options o;
  o.data_dir = dir / "data";
  ASSERT_OK_AND_ASSIGN(auto store, Store::Open(o));
  std::string a = Model(dir, "a", 7);
  std::mutex mu;
  std::condition_variable cv;
  bool halfway = false, gc_done = false;
  ImportOptions io;
  io.progress = [&](const ImportProgress& p) {
    if (p.bytes_done * 2 < p.bytes_total) return;
    std::unique_lock<std::mutex> lock(mu);
    if (!halfway) {
      halfway = true;
      cv.notify_all();
      cv.wait(lock, [&] { return gc_done; });
    }
  };
  Result<ImportResult> r = InternalError("not run");
  std::thread importer([&] { r = store->ImportDirectory(a, *RepoId::Parse("gc/inflight"), io); });
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return halfway; });
  }
  auto gc = store->CollectGarbage();
  {
    std::lock_guard<std::mutex> lock(mu);
    gc_done = true;
    cv.notify_all();
  }
  importer.join();
  ASSERT_OK(gc.status());
  EXPECT_EQ(gc->chunks_deleted, 0u);
  EXPECT_GT(gc->chunks_kept, 0u);  // the import's chunks were there, pinned
  ASSERT_OK(r.status());
  ASSERT_OK(store->Export(r->commit, dir / "out"));
  EXPECT_EQ(ReadTree(dir / "out"), ReadTree(a));
}

}  // namespace
}  // namespace hubnode::store
