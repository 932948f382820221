#include <CLI/CLI.hpp>
#include <cstdlib>

#include "base/log.h"
#include "hub/cli/commands.h"
#include "hub/hub.h"

namespace hubnode::hub {

int RunCli(int argc, char** argv) {
  CLI::App app{"hubnode: a self-hosted, license-aware hub node for open-weight models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "hubnode 0.1.0");
  GlobalFlags flags;
  const char* env = std::getenv("HUBNODE_DATA");
  flags.data_dir = env && *env ? env : "hubdata";
  app.add_option("--data", flags.data_dir, "Data directory (default ./hubdata, or $HUBNODE_DATA)");
  app.add_option("--codec", flags.codec, "How new chunks are compressed: auto (default), zstd, raw")
      ->check(CLI::IsMember({"auto", "zstd", "raw"}));
  app.add_flag("-q,--quiet", flags.quiet, "No progress output and no informational log lines");
  app.add_option("--min-free-space", flags.min_free_bytes,
                 "Disk space the store keeps free for its own work; writes that would leave less are refused "
                 "(bytes, or with a unit: 256MiB, default 256 MiB)")
      ->transform(CLI::AsSizeValue(false));
  app.add_option("--chunks", flags.chunks,
                 "Keep chunk payloads in an S3-compatible bucket: s3://bucket/prefix (keys and endpoint from "
                 "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_REGION; docs/tier.md)");
  app.add_option("--chunk-cache", flags.chunk_cache_bytes,
                 "Local cache of chunks held in the bucket (bytes, or with a unit; default 1 GiB)")
      ->transform(CLI::AsSizeValue(false));
  app.add_flag("--chunks-reader", flags.chunks_reader,
               "A reader node of --chunks: read the packs a writer node puts there, never write or delete one");
  // Global options are accepted after the subcommand too (`hubnode serve --data D`).
  app.fallthrough();

  std::vector<Command> commands;
  AddStoreCommands(app, flags, &commands);
  AddServeCommands(app, flags, &commands);
  AddSignCommands(app, flags, &commands);
  AddLicenseCommands(app, flags, &commands);
  AddTrustCommands(app, flags, &commands);
  AddChunkMapCommands(app, flags, &commands);
  AddRunCommands(app, flags, &commands);
  AddPublishCommands(app, flags, &commands);
  AddMaintainCommands(app, flags, &commands);
  AddTestmodelCommand(app, flags, &commands);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  if (flags.quiet && GetLogLevel() < LogLevel::kWarning) SetLogLevel(LogLevel::kWarning);
  for (auto& c : commands) {
    if (c.sub->parsed()) return c.run();
  }
  return 2;
}

}  // namespace hubnode::hub
