// hub: the node. Composes store (and later verify and runtime) into the `hubnode` command line and,
// in later issues, the HTTP server. This header is what main() calls.
#pragma once

namespace hubnode::hub {

// Parses argv and runs one hubnode command. Returns the process exit code: 0 on success, 1 on an
// error (printed to stderr as "hubnode: <message>"), 2 on a usage error.
int RunCli(int argc, char** argv);

}  // namespace hubnode::hub
