/* tests/criu/openssl_client.c: a RAND_bytes program built against a private OpenSSL 3.5
 * (scripts/install-openssl35) for tests/criu/run's OpenSSL 3.5 part. It knows nothing of
 * snapsafe: OPENSSL_CONF alone decides whether its RAND_bytes is snapsafe's (the shipped
 * provider/openssl-snapsafe.cnf through the EVP_RAND route, or
 * provider/openssl-snapsafe-3.5.cnf through `random_provider`) or plain OpenSSL's.
 *
 *   openssl_client DIR [VALUES]
 *
 * The handshake of tests/criu/clone_probe.cc: a warm-up draw, DIR/ready ("pid N"), then
 * polls DIR/go every 2 ms; the first line of DIR/go is the output path, written via
 * PATH.tmp and rename. Output lines:
 *   ssl ...                   VALUES tokens of RAND_bytes(16), hex
 *   version TEXT              OpenSSL_version(OPENSSL_VERSION), spaces as '_'
 *   provider loaded|absent    whether snapsafe.so is mapped into the process
 *   end
 */
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { kMaxPolls = 30000 };  /* ~60 s of 2 ms polls (counted, not timed) */

static int write_atomically(const char *path, const char *text)
{
	char tmp[4096];
	FILE *f;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		return -1;
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs(text, f);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

/* Appends VALUES hex tokens of RAND_bytes(16) to `out`; 0, or -1 if RAND_bytes failed. */
static int draws(char *out, size_t size, int values)
{
	unsigned char bytes[16];
	size_t used = strlen(out);
	int i, j;

	used += snprintf(out + used, size - used, "ssl");
	for (i = 0; i < values; i++) {
		if (RAND_bytes(bytes, sizeof(bytes)) != 1)
			return -1;
		used += snprintf(out + used, size - used, " ");
		for (j = 0; j < (int)sizeof(bytes); j++)
			used += snprintf(out + used, size - used, "%02x", bytes[j]);
	}
	snprintf(out + used, size - used, "\n");
	return 0;
}

static int provider_loaded(void)
{
	char line[4096];
	FILE *maps = fopen("/proc/self/maps", "r");
	int loaded = 0;

	if (!maps)
		return 0;
	while (fgets(line, sizeof(line), maps))
		if (strstr(line, "/snapsafe.so"))
			loaded = 1;
	fclose(maps);
	return loaded;
}

int main(int argc, char **argv)
{
	char path[4096], out_path[4096] = "", text[8192] = "", version[256];
	int values = argc > 2 ? atoi(argv[2]) : 5;
	int polls = 0;
	size_t i;

	if (argc < 2 || values < 1 || values > 100)
		return 2;
	snprintf(path, sizeof(path), "%s/ready", argv[1]);
	if (draws(text, sizeof(text), 1) != 0) {
		write_atomically(path, "error warm-up: RAND_bytes failed\n");
		return 1;
	}
	snprintf(text, sizeof(text), "pid %d\n", (int)getpid());
	if (write_atomically(path, text) != 0)
		return 1;
	/* The checkpoint is taken somewhere in this wait. */
	snprintf(path, sizeof(path), "%s/go", argv[1]);
	while (!out_path[0]) {
		FILE *go;

		if (++polls > kMaxPolls)
			return 3;
		go = fopen(path, "r");
		if (!go) {
			usleep(2000);
			continue;
		}
		if (fgets(out_path, sizeof(out_path), go))
			out_path[strcspn(out_path, "\n")] = '\0';
		fclose(go);
	}
	text[0] = '\0';
	if (draws(text, sizeof(text), values) != 0) {
		snprintf(text, sizeof(text), "error draw: RAND_bytes failed\n");
	} else {
		snprintf(version, sizeof(version), "%s", OpenSSL_version(OPENSSL_VERSION));
		for (i = 0; version[i]; i++)
			if (version[i] == ' ')
				version[i] = '_';
		snprintf(text + strlen(text), sizeof(text) - strlen(text),
			 "version %s\nprovider %s\n", version,
			 provider_loaded() ? "loaded" : "absent");
	}
	strncat(text, "end\n", sizeof(text) - strlen(text) - 1);
	return write_atomically(out_path, text) == 0 ? 0 : 1;
}
