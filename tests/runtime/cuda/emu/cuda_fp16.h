// The emulator keeps fp16 in cuda_runtime.h.
#pragma once
#include "cuda_runtime.h"
