/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * System Generation ID: the user-space interface of /dev/sysgenid.
 *
 * The device holds an unsigned 32-bit system generation counter that starts at
 * 0 when the driver loads and increases every time the system generation
 * changes (a VM restored from a snapshot, a container restored, an explicit
 * trigger). It never goes down.
 *
 *  - read():  4 bytes (host byte order), the current generation; blocks until
 *             the descriptor's copy is outdated (O_NONBLOCK: EAGAIN). A buffer
 *             shorter than 4 bytes is EINVAL.
 *  - write(): exactly 4 bytes holding the current generation: acknowledges it
 *             (the descriptor's copy becomes current). Else EINVAL.
 *  - poll():  EPOLLIN while the descriptor's copy is outdated.
 *  - mmap():  one page, offset 0, PROT_READ, MAP_SHARED: the first 4 bytes
 *             always hold the current generation, the rest of the page is 0.
 *
 * The ioctls take their argument by value (not a pointer).
 */
#ifndef _UAPI_LINUX_SYSGENID_H
#define _UAPI_LINUX_SYSGENID_H

#include <linux/ioctl.h>

#define SYSGENID_IOCTL			0xE4

/* Argument: non-zero opts this descriptor in as a tracked watcher, 0 out. */
#define SYSGENID_SET_WATCHER_TRACKING	_IO(SYSGENID_IOCTL, 1)
/*
 * Argument: timeout in milliseconds, 0 for none. Returns 0 once no tracked
 * watcher is outdated; EINTR if the caller's descriptor is (or becomes, while
 * waiting) outdated, or on a signal; ETIMEDOUT when the timeout expires.
 */
#define SYSGENID_WAIT_WATCHERS		_IO(SYSGENID_IOCTL, 2)
/*
 * Argument: the minimum new generation (0..0xFFFFFFFF). The generation becomes
 * max(current + 1, argument). Needs CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN
 * (else EACCES); EOVERFLOW once the counter is at 0xFFFFFFFF.
 */
#define SYSGENID_TRIGGER_GEN_UPDATE	_IO(SYSGENID_IOCTL, 3)

#endif /* _UAPI_LINUX_SYSGENID_H */
