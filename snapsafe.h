/* File: snapsafe.h
 *
 * snapsafe's public C header: random bytes, bounded integers, UUIDs (version 4 and 7),
 * request IDs and the status report, for C and any FFI. Bazel target: //:snapsafe_c.
 * Every function returns 0 or a positive errno value; see capi/c_api.h for the contract.
 */
#ifndef SNAPSAFE_H_
#define SNAPSAFE_H_

#include "capi/c_api.h"

#endif /* SNAPSAFE_H_ */
