// The CLI commands. Each registers its subcommand and flags on the app, and runs when chosen.
#pragma once

#include <functional>
#include <memory>
#include <vector>

#include "hub/cli/cli_util.h"

namespace CLI {
class App;
}

namespace hubnode::hub {

// A registered command: Run() is called when its subcommand was given.
struct Command {
  CLI::App* sub = nullptr;
  std::function<int()> run;
};

// Store commands: import, ls, cat, log, refs, tensors, experts, export, stats, gc.
void AddStoreCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// serve, token create|list|revoke, repo visibility.
void AddServeCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// keygen, sign, verify.
void AddSignCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// license check.
void AddLicenseCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// trust add-key|list|revoke|require-signature, approve.
void AddTrustCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// chunkmap sign|verify, chunk get, node-key.
void AddChunkMapCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// run, chat.
void AddRunCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// push, lineage.
void AddPublishCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// fsck, backup, restore.
void AddMaintainCommands(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);
// testmodel.
void AddTestmodelCommand(CLI::App& app, const GlobalFlags& flags, std::vector<Command>* out);

}  // namespace hubnode::hub
