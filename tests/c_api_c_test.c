/* The C API compiled as C (C11, -pedantic) and linked from C: every function is callable
 * with C types, the constants are usable in array sizes, and bad arguments return
 * errno values. A failure prints the line and exits 1. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "snapsafe.h"

#if defined(__cplusplus)
#error "this test must be compiled as C"
#endif

static int failures = 0;
#define CHECK(cond)                                                      \
  do {                                                                   \
    if (!(cond)) {                                                       \
      fprintf(stderr, "%s:%d: FAILED: %s\n", __FILE__, __LINE__, #cond); \
      ++failures;                                                        \
    }                                                                    \
  } while (0)

static int is_uuid_text(const char* s, char version) {
  size_t i;
  if (strlen(s) != 36) return 0;
  for (i = 0; i < 36; ++i) {
    const int hyphen = i == 8 || i == 13 || i == 18 || i == 23;
    if (hyphen ? s[i] != '-' : strchr("0123456789abcdef", s[i]) == NULL || s[i] == '\0') return 0;
  }
  return s[14] == version && strchr("89ab", s[19]) != NULL;
}

int main(void) {
  uint8_t key[32] = {0};
  uint8_t zero[32] = {0};
  uint64_t a = 0, b = 0, die = 99;
  char text[SNAPSAFE_UUID_TEXT_SIZE], text2[SNAPSAFE_UUID_TEXT_SIZE];
  char rid[SNAPSAFE_REQUEST_ID_TEXT_SIZE];
  uint8_t uuid[SNAPSAFE_UUID_SIZE], parsed[SNAPSAFE_UUID_SIZE];
  char* report;
  size_t needed = 0;
  int i;

  CHECK(snapsafe_fill(key, sizeof key) == 0);
  CHECK(memcmp(key, zero, sizeof key) != 0);
  CHECK(snapsafe_fill(NULL, 0) == 0);
  CHECK(snapsafe_fill(NULL, 8) == EINVAL);

  CHECK(snapsafe_u64(&a) == 0 && snapsafe_u64(&b) == 0 && a != b);
  CHECK(snapsafe_u64(NULL) == EINVAL);

  for (i = 0; i < 1000; ++i) {
    CHECK(snapsafe_uniform(6, &die) == 0);
    CHECK(die < 6);
  }
  CHECK(snapsafe_uniform(0, &die) == EINVAL);

  CHECK(snapsafe_uuid_v4(text, sizeof text) == 0);
  CHECK(is_uuid_text(text, '4'));
  CHECK(snapsafe_uuid_v7(text, sizeof text) == 0);
  CHECK(snapsafe_uuid_v7(text2, sizeof text2) == 0);
  CHECK(is_uuid_text(text, '7') && is_uuid_text(text2, '7'));
  CHECK(strcmp(text, text2) < 0);
  CHECK(snapsafe_uuid_v4(text, 36) == EINVAL);

  CHECK(snapsafe_uuid_v7_bytes(uuid, sizeof uuid) == 0);
  CHECK((uuid[6] >> 4) == 7);
  CHECK(snapsafe_uuid_format(uuid, text, sizeof text) == 0);
  CHECK(snapsafe_uuid_parse(text, strlen(text), 7, parsed, sizeof parsed) == 0);
  CHECK(memcmp(uuid, parsed, sizeof uuid) == 0);
  CHECK(snapsafe_uuid_parse("not a uuid", 10, 0, parsed, sizeof parsed) == EINVAL);
  CHECK(snapsafe_uuid_parse(text, strlen(text), 4, parsed, sizeof parsed) == EINVAL);
  CHECK(snapsafe_uuid_v4_bytes(uuid, sizeof uuid) == 0 && (uuid[6] >> 4) == 4);

  CHECK(snapsafe_request_id(rid, sizeof rid) == 0);
  CHECK(strlen(rid) == 32);

  CHECK(snapsafe_status(NULL, 0, &needed) == ERANGE);
  CHECK(needed > 0);
  report = malloc(needed + 256);
  CHECK(report != NULL);
  if (report != NULL) {
    CHECK(snapsafe_status(report, needed + 256, &needed) == 0);
    CHECK(strstr(report, "source:") != NULL);
    free(report);
  }
  CHECK(snapsafe_status(text, 4, &needed) == ERANGE && text[0] == '\0');

  if (failures != 0) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("PASS: C API from C (uuid v7 %s)\n", text2);
  return 0;
}
