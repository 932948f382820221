// The web UI's files (web/), embedded at build time by embed.cmake.
#pragma once

#include <cstddef>

namespace hubnode::hub::web {

struct Asset {
  const char* name;          // file name under web/ (index.html, app.js ...)
  const char* content_type;
  const unsigned char* data;
  size_t size;
};

extern const Asset kAssets[];
extern const size_t kAssetCount;

}  // namespace hubnode::hub::web
