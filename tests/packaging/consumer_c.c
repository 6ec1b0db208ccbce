/* A C consumer of the C API through pkg-config. */
#include <stdio.h>

#include "snapsafe.h"

int main(void) {
  char uuid[37];
  unsigned long long word = 0;
  uint64_t value;
  if (snapsafe_uuid_v4(uuid, sizeof uuid) != 0 || snapsafe_u64(&value) != 0) return 1;
  word = value;
  printf("consumer_c: uuid %s u64 %016llx\n", uuid, word);
  return 0;
}
