// SPDX-License-Identifier: GPL-2.0
/*
 * C helpers luo-rs needs from Rust: static inline functions and macros that
 * bindgen cannot call. Included from the tree's rust/helpers/helpers.c by
 * the hook patch; each is wrapped once in a safe type in kho.rs.
 */
#include <linux/io.h>
#include <linux/mm.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>

__rust_helper void *rust_helper_luo_folio_address(struct folio *folio)
{
	return folio_address(folio);
}

__rust_helper size_t rust_helper_luo_folio_size(struct folio *folio)
{
	return folio_size(folio);
}

__rust_helper void rust_helper_luo_folio_put(struct folio *folio)
{
	folio_put(folio);
}

__rust_helper phys_addr_t rust_helper_luo_virt_to_phys(void *addr)
{
	return virt_to_phys(addr);
}

__rust_helper void rust_helper_luo_cond_resched(void)
{
	cond_resched();
}

__rust_helper bool rust_helper_luo_fatal_signal_pending(void)
{
	return fatal_signal_pending(current);
}
