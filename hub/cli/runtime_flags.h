// The runtime flags `serve`, `run` and `chat` share, parsed into ModelHostOptions.
#pragma once

#include <string>

#include "base/status.h"
#include "hub/serve/model_host.h"

namespace CLI {
class App;
}

namespace hubnode::hub {

struct RuntimeFlags {
  int threads = 0;
  std::string backend = "auto";  // cpu, cuda, auto
  int gpu_device = 0;
  std::string expert_budget;      // "50%", "512MiB", "1073741824"; empty = all experts
  std::string gpu_expert_budget;  // the same, for the experts in GPU memory
  int max_models = 2;
  int max_batch = 8;
  int max_context = 0;
  bool no_prefetch = false;
  std::string matmul_precision = "auto";
  std::string expert_dtype = "stored";
};

void AddRuntimeFlags(CLI::App* sub, RuntimeFlags* flags);
// InvalidArgument for a malformed --expert-budget or out-of-range value.
Result<ModelHostOptions> ModelHostOptionsFrom(const RuntimeFlags& flags);

}  // namespace hubnode::hub
