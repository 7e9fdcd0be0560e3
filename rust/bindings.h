/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What luo-rs adds to the kernel's Rust bindings. Included from the tree's
 * rust/bindings/bindings_helper.h by the hook patch.
 */
#include <linux/anon_inodes.h>
#include <linux/kexec_handover.h>
#include <linux/kho/abi/kexec_handover.h>
#include <linux/liveupdate.h>
#include <linux/mm.h>
#include <linux/memfd.h>
#include <linux/random.h>
#include <linux/vmalloc.h>
#include "kho_glue.h"
#include "gmem_glue.h"
#include "iommufd_glue.h"
#include "vfio_glue.h"
#include "kvm_glue.h"
#include "vcpu_glue.h"
#include "pinned_vm.h"
#include "luo_sysfs.h"
#include "luo_test_boot.h"
#include "memfd_shmem.h"
