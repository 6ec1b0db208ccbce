// Uses an internal symbol of the ID code directly: what //ids/internal's visibility must
// refuse to a package outside its friends (see BUILD.bazel beside this file).
#include "ids/internal/epoch.h"

unsigned long long probe_fork_token() { return snapsafe::ids_internal::fork_token(); }
