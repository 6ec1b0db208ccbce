// SPDX-License-Identifier: GPL-2.0
/*
 * sysgenid.c - System Generation ID, an out-of-tree driver for /dev/sysgenid
 *
 * Exposes an unsigned 32-bit system generation counter that starts at 0 when
 * the module loads and increases every time the system generation changes: a
 * VM restored from a snapshot (driven by the kernel's VM-fork notifier, which
 * the VMGENID driver fires after the kernel RNG reseeded), or an explicit
 * SYSGENID_TRIGGER_GEN_UPDATE (containers: the restoring tool calls it). The
 * user-space interface is include/uapi/linux/sysgenid.h, as in the SysGenID
 * patch set (v7); docs/KERNEL_SHIM.md has the workflow and the choices this
 * driver makes where that interface is silent.
 *
 * Locking
 * -------
 * One spinlock, sysgenid.lock, protects all shared state: the generation, its
 * copy in the user-visible page, the number of tracked watchers and of
 * outdated tracked watchers, and each descriptor's acked_gen and tracked.
 * Every caller runs in process context (file operations; the VM-fork notifier
 * is a blocking notifier chain), nothing sleeps under the lock, and a
 * critical section is a few loads and stores.
 *
 * A descriptor is outdated while its acked_gen differs from the generation.
 * Both change only under the lock, so outdated_watchers (the tracked
 * descriptors that are outdated) is exact:
 *  - a bump makes every tracked descriptor outdated (acked_gen only ever holds
 *    a generation that was current, so it is below the new one):
 *    outdated_watchers = watchers;
 *  - an acknowledgement, a descriptor leaving tracking or being closed take an
 *    outdated tracked descriptor out of the count; one joining tracking while
 *    outdated puts it in.
 *
 * Wake-ups cannot be lost. Every sleeper (read(), poll(), WAIT_WATCHERS)
 * queues itself on its wait queue before it tests its condition
 * (wait_event_*() and poll_wait() set the task state with a full barrier
 * first). Every change that can make a condition true is made under the lock
 * and followed, after the unlock, by a wake_up on that queue, which takes the
 * queue's lock. So either the sleeper's test sees the change, or it was
 * already queued when the waker walked the queue. Conditions are read with
 * READ_ONCE() outside the lock: they only decide whether to sleep; what a
 * call returns is decided under the lock (read()) or re-checked (ioctl).
 *
 * The page. The generation is stored in the page with smp_store_release()
 * inside the same critical section that changes sysgenid.generation. Hence
 * (1) a task that loads the new value from its mapping and then acknowledges
 * it with write() finds it current (write() takes the lock, released only
 * after the store); (2) the VM-fork notifier runs after crng_reseed(), so a
 * task that loads the new value with acquire semantics and then calls
 * getrandom() gets output of the reseeded kernel RNG. Bytes 4..4095 of the
 * page are zero and never written: a reader may load the first 8 bytes as one
 * word and compare it for inequality.
 */

#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/notifier.h>
#include <linux/poll.h>
#include <linux/random.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/uaccess.h>
#include <linux/version.h>
#include <linux/wait.h>

#include <linux/sysgenid.h>

#if LINUX_VERSION_CODE < KERNEL_VERSION(6, 3, 0)
/* vm_flags became read-only behind helpers in 6.3. */
static inline void vm_flags_mod(struct vm_area_struct *vma, vm_flags_t set,
				vm_flags_t clear)
{
	vma->vm_flags = (vma->vm_flags | set) & ~clear;
}
#endif

static struct {
	spinlock_t lock;
	u32 generation;
	u32 *page_gen;			/* start of the mmap'able page */
	unsigned int watchers;		/* tracked descriptors */
	unsigned int outdated_watchers;	/* tracked and outdated */
	wait_queue_head_t read_wait;	/* read() and poll(): "outdated" */
	wait_queue_head_t watchers_wait; /* SYSGENID_WAIT_WATCHERS */
} sysgenid = {
	.lock = __SPIN_LOCK_UNLOCKED(sysgenid.lock),
	.read_wait = __WAIT_QUEUE_HEAD_INITIALIZER(sysgenid.read_wait),
	.watchers_wait = __WAIT_QUEUE_HEAD_INITIALIZER(sysgenid.watchers_wait),
};

/* Per open file description. */
struct sysgenid_file {
	u32 acked_gen;	/* this descriptor's copy of the generation */
	bool tracked;	/* opted in with SYSGENID_SET_WATCHER_TRACKING */
};

static bool sysgenid_outdated(const struct sysgenid_file *f)
{
	return READ_ONCE(f->acked_gen) != READ_ONCE(sysgenid.generation);
}

/*
 * Sets the generation to max(current + 1, min_gen) and wakes every reader,
 * poller and waiter. The counter never wraps: at U32_MAX it stays there, and
 * no later change can be signalled. So only a VM fork may take it there (it
 * must be signalled, and it takes four billion of them); a trigger that
 * would (one TRIGGER_GEN_UPDATE with U32_MAX used to end detection until the
 * module was reloaded) is refused with -ERANGE, unless @may_saturate.
 */
static int sysgenid_bump(u32 min_gen, bool may_saturate, const char *why)
{
	u32 gen;

	spin_lock(&sysgenid.lock);
	if (sysgenid.generation == U32_MAX) {
		spin_unlock(&sysgenid.lock);
		pr_warn("generation at its maximum, %s not signalled\n", why);
		return -EOVERFLOW;
	}
	gen = max(sysgenid.generation + 1, min_gen);
	if (gen == U32_MAX && !may_saturate) {
		spin_unlock(&sysgenid.lock);
		return -ERANGE;
	}
	WRITE_ONCE(sysgenid.generation, gen);
	smp_store_release(sysgenid.page_gen, gen);
	WRITE_ONCE(sysgenid.outdated_watchers, sysgenid.watchers);
	spin_unlock(&sysgenid.lock);

	wake_up_interruptible_all(&sysgenid.read_wait);
	wake_up_interruptible_all(&sysgenid.watchers_wait);
	pr_info("generation %u (%s)\n", gen, why);
	return 0;
}

/*
 * Takes an outdated tracked descriptor out of the count; true if it was the
 * last one.
 */
static bool sysgenid_uncount_locked(const struct sysgenid_file *f)
{
	if (!f->tracked || f->acked_gen == sysgenid.generation)
		return false;
	WRITE_ONCE(sysgenid.outdated_watchers, sysgenid.outdated_watchers - 1);
	return sysgenid.outdated_watchers == 0;
}

static void sysgenid_set_tracking(struct sysgenid_file *f, bool on)
{
	bool wake = false;

	spin_lock(&sysgenid.lock);
	if (f->tracked != on) {
		if (on) {
			f->tracked = true;
			sysgenid.watchers++;
			if (f->acked_gen != sysgenid.generation)
				WRITE_ONCE(sysgenid.outdated_watchers,
					   sysgenid.outdated_watchers + 1);
		} else {
			wake = sysgenid_uncount_locked(f);
			f->tracked = false;
			sysgenid.watchers--;
		}
	}
	spin_unlock(&sysgenid.lock);

	if (wake)
		wake_up_interruptible_all(&sysgenid.watchers_wait);
}

static int sysgenid_open(struct inode *inode, struct file *file)
{
	struct sysgenid_file *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return -ENOMEM;

	spin_lock(&sysgenid.lock);
	f->acked_gen = sysgenid.generation;
	spin_unlock(&sysgenid.lock);

	file->private_data = f;
	return stream_open(inode, file);
}

static int sysgenid_release(struct inode *inode, struct file *file)
{
	struct sysgenid_file *f = file->private_data;

	sysgenid_set_tracking(f, false);
	kfree(f);
	return 0;
}

/*
 * Returns the current generation once this descriptor's copy is outdated, and
 * keeps returning it until write() acknowledges it. Blocks until then, unless
 * O_NONBLOCK (checked on every call: fcntl() may change it).
 */
static ssize_t sysgenid_read(struct file *file, char __user *ubuf,
			     size_t count, loff_t *ppos)
{
	struct sysgenid_file *f = file->private_data;
	bool outdated;
	u32 gen;
	int ret;

	if (count < sizeof(gen))
		return -EINVAL;

	for (;;) {
		spin_lock(&sysgenid.lock);
		gen = sysgenid.generation;
		outdated = f->acked_gen != gen;
		spin_unlock(&sysgenid.lock);
		if (outdated)
			break;
		if (file->f_flags & O_NONBLOCK)
			return -EAGAIN;
		ret = wait_event_interruptible(sysgenid.read_wait,
					       sysgenid_outdated(f));
		if (ret)
			return ret;
		/* Another thread may have acknowledged on this descriptor. */
	}

	if (copy_to_user(ubuf, &gen, sizeof(gen)))
		return -EFAULT;
	return sizeof(gen);
}

/* Acknowledges the current generation: exactly 4 bytes holding it. */
static ssize_t sysgenid_write(struct file *file, const char __user *ubuf,
			      size_t count, loff_t *ppos)
{
	struct sysgenid_file *f = file->private_data;
	bool wake;
	u32 gen;

	if (count != sizeof(gen))
		return -EINVAL;
	if (copy_from_user(&gen, ubuf, sizeof(gen)))
		return -EFAULT;

	spin_lock(&sysgenid.lock);
	if (gen != sysgenid.generation) {
		spin_unlock(&sysgenid.lock);
		return -EINVAL;
	}
	wake = sysgenid_uncount_locked(f);
	WRITE_ONCE(f->acked_gen, gen);
	spin_unlock(&sysgenid.lock);

	if (wake)
		wake_up_interruptible_all(&sysgenid.watchers_wait);
	return sizeof(gen);
}

static __poll_t sysgenid_poll(struct file *file, poll_table *wait)
{
	struct sysgenid_file *f = file->private_data;

	poll_wait(file, &sysgenid.read_wait, wait);
	return sysgenid_outdated(f) ? EPOLLIN | EPOLLRDNORM : 0;
}

/* Done waiting: no tracked watcher is outdated, or the caller itself is. */
static bool sysgenid_watchers_done(const struct sysgenid_file *f)
{
	return READ_ONCE(sysgenid.outdated_watchers) == 0 ||
	       sysgenid_outdated(f);
}

/*
 * 0 once no tracked watcher is outdated. -EINTR if the caller is outdated on
 * entry or becomes so while waiting (it must handle the change first), and
 * on a signal (not restarted: the caller retries with the timeout it wants).
 * -ETIMEDOUT when timeout_ms (0: none) expires first.
 */
static long sysgenid_wait_watchers(struct sysgenid_file *f,
				   unsigned long timeout_ms)
{
	long ret;

	if (sysgenid_outdated(f))
		return -EINTR;

	if (timeout_ms) {
		ret = wait_event_interruptible_timeout(
				sysgenid.watchers_wait,
				sysgenid_watchers_done(f),
				msecs_to_jiffies(timeout_ms));
		if (ret == 0)
			return -ETIMEDOUT;
	} else {
		ret = wait_event_interruptible(sysgenid.watchers_wait,
					       sysgenid_watchers_done(f));
	}
	if (ret < 0 || sysgenid_outdated(f))
		return -EINTR;
	return 0;
}

static long sysgenid_ioctl(struct file *file, unsigned int cmd,
			   unsigned long arg)
{
	struct sysgenid_file *f = file->private_data;

	switch (cmd) {
	case SYSGENID_SET_WATCHER_TRACKING:
		sysgenid_set_tracking(f, arg != 0);
		return 0;
	case SYSGENID_WAIT_WATCHERS:
		return sysgenid_wait_watchers(f, arg);
	case SYSGENID_TRIGGER_GEN_UPDATE:
		/* The generation is system-wide: the initial namespace. */
		if (!checkpoint_restore_ns_capable(&init_user_ns))
			return -EACCES;
		if (arg > U32_MAX)
			return -EINVAL;
		return sysgenid_bump(arg, false, "trigger");
	default:
		return -ENOTTY;
	}
}

/*
 * The page is handed out from a fault handler rather than inserted at mmap()
 * time, so that a mapping whose page table entry was dropped (fork() does not
 * copy it for a shared file mapping, madvise(MADV_DONTNEED) zaps it) simply
 * faults it in again.
 */
static vm_fault_t sysgenid_vm_fault(struct vm_fault *vmf)
{
	struct page *page = virt_to_page(sysgenid.page_gen);

	if (vmf->pgoff != 0)
		return VM_FAULT_SIGBUS;
	get_page(page);
	vmf->page = page;
	return 0;
}

static const struct vm_operations_struct sysgenid_vm_ops = {
	.fault = sysgenid_vm_fault,
};

/*
 * One page at offset 0, readable, shared. A writable mapping is refused with
 * -EPERM; VM_MAYWRITE is cleared so mprotect() cannot make it writable later.
 * "Shared" is VM_MAYSHARE: for a descriptor opened read-only the kernel clears
 * VM_SHARED from a MAP_SHARED mapping (it can never be written through) and
 * keeps VM_MAYSHARE.
 */
static int sysgenid_mmap(struct file *file, struct vm_area_struct *vma)
{
	if (vma->vm_pgoff != 0 || vma_pages(vma) != 1)
		return -EINVAL;
	if (vma->vm_flags & VM_WRITE)
		return -EPERM;
	if (!(vma->vm_flags & VM_MAYSHARE))
		return -EINVAL;

	vm_flags_mod(vma, VM_DONTEXPAND, VM_MAYWRITE);
	vma->vm_ops = &sysgenid_vm_ops;
	return 0;
}

static const struct file_operations sysgenid_fops = {
	.owner		= THIS_MODULE,
	.open		= sysgenid_open,
	.release	= sysgenid_release,
	.read		= sysgenid_read,
	.write		= sysgenid_write,
	.poll		= sysgenid_poll,
	.mmap		= sysgenid_mmap,
	.unlocked_ioctl	= sysgenid_ioctl,
	.compat_ioctl	= sysgenid_ioctl,	/* arguments are values */
};

/*
 * Readable and writable by everyone: write() only acknowledges on the
 * writer's own descriptor; the one system-wide action (TRIGGER) checks
 * capabilities.
 */
static struct miscdevice sysgenid_misc = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= "sysgenid",
	.fops	= &sysgenid_fops,
	.mode	= 0666,
};

/* Called by add_vmfork_randomness() after crng_reseed(), in process context. */
static int sysgenid_vmfork(struct notifier_block *nb, unsigned long action,
			   void *data)
{
	sysgenid_bump(0, true, "vm fork");
	return NOTIFY_DONE;
}

static struct notifier_block sysgenid_vmfork_nb = {
	.notifier_call = sysgenid_vmfork,
};

static int __init sysgenid_init(void)
{
	int ret;

	sysgenid.page_gen = (u32 *)get_zeroed_page(GFP_KERNEL);
	if (!sysgenid.page_gen)
		return -ENOMEM;

	ret = misc_register(&sysgenid_misc);
	if (ret)
		goto free_page;

	ret = register_random_vmfork_notifier(&sysgenid_vmfork_nb);
	if (ret)
		goto deregister;

	pr_info("/dev/sysgenid ready, generation 0%s\n",
		IS_ENABLED(CONFIG_VMGENID) ? "" :
		" (no CONFIG_VMGENID: only TRIGGER bumps it)");
	return 0;

deregister:
	misc_deregister(&sysgenid_misc);
free_page:
	free_page((unsigned long)sysgenid.page_gen);
	return ret;
}

/*
 * Unloading is only possible with no descriptor open, and every mapping holds
 * its file: by now nothing maps the page.
 */
static void __exit sysgenid_exit(void)
{
	unregister_random_vmfork_notifier(&sysgenid_vmfork_nb);
	misc_deregister(&sysgenid_misc);
	free_page((unsigned long)sysgenid.page_gen);
}

module_init(sysgenid_init);
module_exit(sysgenid_exit);

MODULE_DESCRIPTION("System Generation ID (/dev/sysgenid), bumped on VM fork");
MODULE_LICENSE("GPL");
