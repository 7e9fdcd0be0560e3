// SPDX-License-Identifier: GPL-2.0
/*
 * Charging the memory luo-rs pins to the caller's RLIMIT_MEMLOCK, as RDMA
 * does for the memory it pins: the count is the caller's process's
 * (mm_struct::pinned_vm, VmPin in /proc/PID/status), so each VMM's own
 * limit covers its own guest, and it is apart from the locked_vm count
 * VFIO and iommufd charge their pins to. pinned_vm.rs wraps it.
 */
#include <linux/capability.h>
#include <linux/err.h>
#include <linux/mm.h>
#include <linux/overflow.h>
#include <linux/sched/mm.h>
#include <linux/sched/signal.h>

#include "rust/pinned_vm.h"

struct mm_struct *luo_pinned_vm_charge(unsigned long pages)
{
	struct mm_struct *mm = current->mm;
	unsigned long limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	bool may_exceed = false;
	s64 cur, new;

	if (!mm || pages > S64_MAX)
		return ERR_PTR(-ENOMEM);
	cur = atomic64_read(&mm->pinned_vm);
	do {
		if (check_add_overflow(cur, (s64)pages, &new))
			return ERR_PTR(-ENOMEM);
		/* Like mlock(): the capability is asked for only when needed. */
		if ((u64)new > limit && !may_exceed) {
			if (!capable(CAP_IPC_LOCK))
				return ERR_PTR(-ENOMEM);
			may_exceed = true;
		}
	} while (!atomic64_try_cmpxchg(&mm->pinned_vm, &cur, new));
	mmgrab(mm);
	return mm;
}

void luo_pinned_vm_uncharge(struct mm_struct *mm, unsigned long pages)
{
	WARN_ON_ONCE(atomic64_sub_return(pages, &mm->pinned_vm) < 0);
	mmdrop(mm);
}
