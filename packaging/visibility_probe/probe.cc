// Uses an internal symbol directly: what //rng/internal's visibility must refuse to a
// package outside its friends (see BUILD.bazel beside this file).
#include "rng/internal/draw.h"

int probe_draw(void* out, unsigned long size) { return snapsafe::rng_internal::draw(out, size); }
