// The store's chunk tier (store::ChunkTier) in an S3 bucket: packs are objects
// `<prefix>packs/<name>.pack`, written with one PUT or a multipart upload, read by range.
//
// Thread safety: as S3Client, every method may be called concurrently.
#pragma once

#include <memory>
#include <string_view>

#include "base/status.h"
#include "hub/s3/s3_client.h"
#include "store/store.h"

namespace hubnode::hub::s3 {

// A tier over `client` under `prefix` ("" or ending in '/').
std::shared_ptr<store::ChunkTier> NewS3ChunkTier(std::shared_ptr<S3Client> client, std::string prefix);

// The tier an `s3://bucket/prefix` URL names, with the endpoint and keys of the environment
// (S3OptionsFromEnv). The bucket must exist (Unavailable / PermissionDenied / NotFound else).
Result<std::shared_ptr<store::ChunkTier>> OpenS3ChunkTier(std::string_view url);

// Creates the bucket an `s3://bucket/prefix` URL names (OK when it exists and is ours).
Status CreateBucketFor(std::string_view url);

}  // namespace hubnode::hub::s3
