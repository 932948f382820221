// hub: the node. Composes store, verify and runtime into the `hubnode` command line, the HTTP
// server and its route groups, the mirror and the peer network (hub/README.md draws the folders).
// This header is what main() calls.
#pragma once

namespace hubnode::hub {

// Parses argv and runs one hubnode command. Returns the process exit code: 0 on success, 1 on an
// error (printed to stderr as "hubnode: <message>"), 2 on a usage error.
int RunCli(int argc, char** argv);

}  // namespace hubnode::hub
