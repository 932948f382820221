// The emulator keeps bf16 in cuda_runtime.h.
#pragma once
#include "cuda_runtime.h"
