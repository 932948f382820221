// base: the small vocabulary every hubnode module shares: Status/Result and their macros,
// SHA-256/SHA-1 and strong digest ids, hex, byte encoding, files, logging and a thread pool.
// It depends on nothing in hubnode and only on OpenSSL outside it.
#pragma once

#include "base/bytes.h"
#include "base/file.h"
#include "base/hash.h"
#include "base/hex.h"
#include "base/json_limits.h"
#include "base/log.h"
#include "base/status.h"
#include "base/thread_pool.h"
#include "base/time_format.h"
