// Publishing a directory to a node: the client side of the Hugging Face write API, as
// `huggingface_hub`'s upload_folder does it (create the repo, preupload, LFS batch with basic or
// multipart transfers, one NDJSON commit), over libcurl. Rerunning resumes: files the node already
// holds at the branch are skipped, and LFS objects it holds get no upload action.
//
// Errors: InvalidArgument without a token, for a bad repo id or an empty directory;
// FailedPrecondition when the node refuses a step (its error message quoted); Unavailable for
// network failures.
//
// Thread safety: Push may be called concurrently (each call uses its own curl handles).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>

#include "base/status.h"

namespace hubnode::hub {

struct PushOptions {
  // The directory to upload. Required.
  std::string dir;
  // Repo id (ns/name); created when missing. Required.
  std::string repo;
  // The node's URL, e.g. http://127.0.0.1:8080. Required.
  std::string to;
  // A write token; empty = $HF_TOKEN. Default: empty.
  std::string token;
  // A PEM private key: sign the directory and push a fresh model.sig with it. Default: none.
  std::string sign_key;
  // Commit message. Default: "Push <dir name>".
  std::string message;
  // Branch to commit to. Default: main.
  std::string branch = "main";
  // Create the repo private. Default: false.
  bool is_private = false;
};

// Progress of hashing and uploading: `update` gets bytes done of total and what is being done;
// `finish` ends a phase. Both may be empty.
struct PushProgress {
  std::function<void(uint64_t done, uint64_t total, const std::string& what)> update = [](uint64_t, uint64_t,
                                                                                           const std::string&) {};
  std::function<void()> finish = [] {};
};

struct PushResult {
  std::string repo;
  std::string commit_oid;  // the new commit, or the branch's head when up to date
  bool up_to_date = false;
  size_t files = 0;    // files in the directory (with model.sig when signed)
  size_t changed = 0;  // files the commit added or changed
  uint64_t uploaded = 0;  // LFS bytes sent
  nlohmann::json bytes = nlohmann::json::object();  // the commit's byte report: total, new, newStored, held
  // Set when the node staged the commit for review: why, and how an operator releases it.
  std::string held_reason, held_release;
};

Result<PushResult> Push(const PushOptions& options, const PushProgress& progress);

// One JSON call to a node's API (`url` whole; `token` empty = anonymous, "$HF_TOKEN" is not
// read here). FailedPrecondition with the node's error message for an answer other than 2xx.
Result<nlohmann::json> CallNode(const std::string& method, const std::string& url, const std::string& token,
                                const nlohmann::json& body, const char* what);

}  // namespace hubnode::hub
