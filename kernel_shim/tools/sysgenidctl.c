// SPDX-License-Identifier: GPL-2.0
/*
 * sysgenidctl - the overseer's side of /dev/sysgenid, for scripts
 *
 *   sysgenidctl get                 print the current generation
 *   sysgenidctl trigger [MIN]       bump it to max(current + 1, MIN) and print
 *                                   it; needs CAP_CHECKPOINT_RESTORE or
 *                                   CAP_SYS_ADMIN
 *   sysgenidctl wait-watchers [MS]  wait until no tracked watcher is outdated
 *                                   (MS: timeout; 0 or none: no timeout)
 *   sysgenidctl watch               print every new generation as it comes
 *
 * A restore hook for a container, after the restore and before un-quiescing:
 *   sysgenidctl trigger && sysgenidctl wait-watchers 5000
 *
 * Exit status: 0 done, 1 error, 2 usage, 3 wait-watchers timed out.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <linux/sysgenid.h>

static const char *device = "/dev/sysgenid";

static int open_device(int flags)
{
	int fd = open(device, flags | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "sysgenidctl: %s: %s\n", device, strerror(errno));
		exit(1);
	}
	return fd;
}

static unsigned long parse_number(const char *s, unsigned long max)
{
	unsigned long value;
	char *end;

	errno = 0;
	value = strtoul(s, &end, 0);
	if (errno || end == s || *end || s[0] == '-' || value > max) {
		fprintf(stderr, "sysgenidctl: not a number from 0 to %lu: %s\n", max, s);
		exit(2);
	}
	return value;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The current generation, from the device's read-only page. */
static uint32_t generation(int fd)
{
	const volatile uint32_t *page;
	uint32_t gen;

	page = mmap(NULL, 4096, PROT_READ, MAP_SHARED, fd, 0);
	if (page == MAP_FAILED) {
		fprintf(stderr, "sysgenidctl: mmap %s: %s\n", device, strerror(errno));
		exit(1);
	}
	gen = page[0];
	munmap((void *)page, 4096);
	return gen;
}

static int cmd_trigger(unsigned long min_gen)
{
	int fd = open_device(O_RDONLY);

	if (ioctl(fd, SYSGENID_TRIGGER_GEN_UPDATE, min_gen) != 0) {
		fprintf(stderr, "sysgenidctl: trigger: %s\n", strerror(errno));
		return 1;
	}
	printf("%u\n", generation(fd));
	return 0;
}

/*
 * The overseer's wait: EINTR means this descriptor is outdated (a change came
 * while waiting) or a signal came; acknowledge whatever is current and wait
 * again for what is left of the timeout.
 */
static int cmd_wait_watchers(unsigned long timeout_ms)
{
	int fd = open_device(O_RDWR | O_NONBLOCK);
	uint64_t deadline = now_ms() + timeout_ms;
	unsigned long left = timeout_ms;
	uint32_t gen;

	for (;;) {
		if (ioctl(fd, SYSGENID_WAIT_WATCHERS, left) == 0)
			return 0;
		if (errno == ETIMEDOUT)
			break;
		if (errno != EINTR) {
			fprintf(stderr, "sysgenidctl: wait-watchers: %s\n", strerror(errno));
			return 1;
		}
		if (read(fd, &gen, sizeof(gen)) == sizeof(gen))
			(void)!write(fd, &gen, sizeof(gen));
		if (timeout_ms) {
			uint64_t now = now_ms();

			if (now >= deadline)
				break;
			left = deadline - now;
		}
	}
	fprintf(stderr, "sysgenidctl: wait-watchers: timed out after %lu ms\n", timeout_ms);
	return 3;
}

static int cmd_watch(void)
{
	int fd = open_device(O_RDWR);
	uint32_t gen;

	for (;;) {
		if (read(fd, &gen, sizeof(gen)) != sizeof(gen)) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "sysgenidctl: read: %s\n", strerror(errno));
			return 1;
		}
		printf("%u\n", gen);
		fflush(stdout);
		/* EINVAL if it moved on meanwhile: the next read() returns the new one. */
		(void)!write(fd, &gen, sizeof(gen));
	}
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "";
	const char *env = getenv("SYSGENID_DEVICE");

	if (env && *env)
		device = env;
	if (!strcmp(cmd, "get") && argc == 2) {
		printf("%u\n", generation(open_device(O_RDONLY)));
		return 0;
	}
	if (!strcmp(cmd, "trigger") && argc <= 3)
		return cmd_trigger(argc == 3 ? parse_number(argv[2], UINT32_MAX) : 0);
	if (!strcmp(cmd, "wait-watchers") && argc <= 3)
		return cmd_wait_watchers(argc == 3 ? parse_number(argv[2], UINT32_MAX) : 0);
	if (!strcmp(cmd, "watch") && argc == 2)
		return cmd_watch();
	fprintf(stderr,
		"usage: sysgenidctl get | trigger [MIN] | wait-watchers [MS] | watch\n");
	return 2;
}
