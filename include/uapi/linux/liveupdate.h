/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * /dev/liveupdate: the userspace interface of the Live Update Orchestrator.
 *
 * This header is the single source of truth for luo-rs's uAPI: the kernel's
 * Rust code reads it through bindgen (the kernel's uapi crate), C tests
 * include it, and the userspace Rust crate is checked against it.
 *
 * It is a superset of the Linux 7.3 header of the same name: every
 * operation Linux 7.3 has keeps its command number and struct layout, so
 * unmodified upstream clients work. luo-rs's additions use command numbers
 * upstream does not use (0x80.. on /dev/liveupdate, 0xC0.. on sessions).
 */
#ifndef _UAPI_LIVEUPDATE_H
#define _UAPI_LIVEUPDATE_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * DOC: Calling convention
 *
 * Every ioctl takes a pointer to a struct whose first member is
 * ``__u32 size``, set by the caller to the size of the struct it was built
 * with. This lets the struct grow at the end without new command numbers:
 *
 *  - a @size smaller than the struct's first published size is refused
 *    with EINVAL;
 *  - a @size larger than the kernel knows is accepted only if every byte
 *    past the end of the kernel's struct is zero, otherwise E2BIG;
 *  - output fields are written back for at most @size bytes.
 *
 * Errno values shared by all ioctls:
 *
 *  - ENOTTY: the command number is not known on this kind of fd.
 *  - E2BIG: non-zero bytes in the part of the struct the kernel does not
 *    know.
 *  - EINVAL: the struct was understood but a field is wrong (including
 *    non-zero reserved fields and a too small @size).
 *  - EOPNOTSUPP: a field asks for something this kernel does not support.
 *  - EFAULT: the struct could not be read from or written to user memory.
 *  - ENOENT: the named session or token does not exist.
 *  - ENOMEM: out of memory.
 *  - EPERM: the caller lacks CAP_SYS_ADMIN for a privileged operation.
 *  - EBUSY: the operation is not allowed in the current state.
 *  - EACCES: the session belongs to another user (see RETRIEVE_SESSION).
 */

/* The ioctl type, registered in Documentation/userspace-api/ioctl/ioctl-number.rst */
#define LIVEUPDATE_IOCTL_TYPE		0xBA

/* Longest session name, including its terminating NUL. */
#define LIVEUPDATE_SESSION_NAME_LENGTH	64

/**
 * enum liveupdate_state - global state of the live update state machine
 * @LIVEUPDATE_STATE_UNDEFINED: never reported; zero is not a valid state.
 * @LIVEUPDATE_STATE_NORMAL: no update in progress; fds can be preserved.
 * @LIVEUPDATE_STATE_PREPARED: PREPARE ran: preserved state is serialized
 *	and its memory preserved while workloads still run.
 * @LIVEUPDATE_STATE_FROZEN: FREEZE ran: the final, short step before the
 *	kexec; the update is committed.
 * @LIVEUPDATE_STATE_UPDATED: this kernel was booted by a live update and
 *	holds incoming sessions that can be retrieved, or kernel subsystems'
 *	handover data, until FINISH.
 */
enum liveupdate_state {
	LIVEUPDATE_STATE_UNDEFINED = 0,
	LIVEUPDATE_STATE_NORMAL = 1,
	LIVEUPDATE_STATE_PREPARED = 2,
	LIVEUPDATE_STATE_FROZEN = 3,
	LIVEUPDATE_STATE_UPDATED = 4,
};

/* Commands on /dev/liveupdate (the same numbers as Linux 7.3). */
enum {
	LIVEUPDATE_CMD_BASE = 0x00,
	LIVEUPDATE_CMD_CREATE_SESSION = LIVEUPDATE_CMD_BASE,
	LIVEUPDATE_CMD_RETRIEVE_SESSION = 0x01,
};

/* Commands on session fds (the same numbers as Linux 7.3). */
enum {
	LIVEUPDATE_CMD_SESSION_BASE = 0x40,
	LIVEUPDATE_CMD_SESSION_PRESERVE_FD = LIVEUPDATE_CMD_SESSION_BASE,
	LIVEUPDATE_CMD_SESSION_RETRIEVE_FD = 0x41,
	LIVEUPDATE_CMD_SESSION_FINISH = 0x42,
	LIVEUPDATE_CMD_SESSION_GET_NAME = 0x43,
};

/* luo-rs commands on /dev/liveupdate, in a range Linux 7.3 does not use. */
enum {
	LIVEUPDATE_CMD_EXT_BASE = 0x80,
	LIVEUPDATE_CMD_GET_STATE = LIVEUPDATE_CMD_EXT_BASE,
	LIVEUPDATE_CMD_SET_EVENT = 0x81,
};

/**
 * enum liveupdate_event - events that drive the global state machine
 * @LIVEUPDATE_EVENT_PREPARE: NORMAL -> PREPARED. Do the heavy work while
 *	workloads still run: preserve memory with KHO and serialize the state
 *	of every session into the handover blob.
 * @LIVEUPDATE_EVENT_FREEZE: PREPARED -> FROZEN. Do only what changed since
 *	PREPARE (the blackout window). After it the update is committed.
 * @LIVEUPDATE_EVENT_CANCEL: PREPARED or FROZEN -> NORMAL. Undo PREPARE and
 *	FREEZE completely: nothing stays preserved, the blob is withdrawn.
 * @LIVEUPDATE_EVENT_FINISH: UPDATED -> NORMAL. Release every incoming
 *	session nobody retrieved and end the update for kernel subsystems.
 *	The only way out of UPDATED when no session was handed over.
 *
 * An event that is not valid in the current state fails with EBUSY and
 * changes nothing. A PREPARE or FREEZE that fails part way is rolled back
 * to NORMAL, with nothing left preserved, and returns the error.
 */
enum liveupdate_event {
	LIVEUPDATE_EVENT_PREPARE = 1,
	LIVEUPDATE_EVENT_FREEZE = 2,
	LIVEUPDATE_EVENT_CANCEL = 3,
	LIVEUPDATE_EVENT_FINISH = 4,
};

/* luo-rs commands on session fds, in a range Linux 7.3 does not use. */
enum {
	LIVEUPDATE_CMD_SESSION_EXT_BASE = 0xC0,
	LIVEUPDATE_CMD_SESSION_UNPRESERVE_FD = LIVEUPDATE_CMD_SESSION_EXT_BASE,
	LIVEUPDATE_CMD_SESSION_GET_STATE = 0xC1,
	LIVEUPDATE_CMD_SESSION_SET_NAME = 0xC2,
};

/**
 * enum liveupdate_session_state - where one session stands
 * @LIVEUPDATE_SESSION_STATE_UNDEFINED: never reported.
 * @LIVEUPDATE_SESSION_STATE_OPEN: outgoing; files can be added and removed.
 *	An unnamed session stays here: it is never handed over.
 * @LIVEUPDATE_SESSION_STATE_PREPARED: outgoing, named, and the system is
 *	PREPARED: its files are prepared.
 * @LIVEUPDATE_SESSION_STATE_FROZEN: outgoing, named, and the system is
 *	FROZEN: it goes to the next kernel.
 * @LIVEUPDATE_SESSION_STATE_INCOMING: handed over by the previous kernel;
 *	its files can be retrieved.
 * @LIVEUPDATE_SESSION_STATE_FINISHED: incoming and finished (by
 *	SESSION_FINISH or a global FINISH): nothing is left in it.
 */
enum liveupdate_session_state {
	LIVEUPDATE_SESSION_STATE_UNDEFINED = 0,
	LIVEUPDATE_SESSION_STATE_OPEN = 1,
	LIVEUPDATE_SESSION_STATE_PREPARED = 2,
	LIVEUPDATE_SESSION_STATE_FROZEN = 3,
	LIVEUPDATE_SESSION_STATE_INCOMING = 4,
	LIVEUPDATE_SESSION_STATE_FINISHED = 5,
};

/**
 * struct liveupdate_ioctl_create_session - ioctl(LIVEUPDATE_IOCTL_CREATE_SESSION)
 * @size: input: sizeof(struct liveupdate_ioctl_create_session).
 * @fd:   output: the new session's file descriptor (close-on-exec).
 * @name: input: the session's name: 1 to 63 bytes and a NUL; bytes after
 *	  the NUL are ignored.
 *
 * Creates a named session as a new fd, on any /dev/liveupdate fd. The new
 * session lives as long as its own fd, independently of the fd it was
 * created from. The session belongs to the caller's euid. Names are
 * unique among one user's outgoing sessions (incoming ones are apart).
 *
 * Return: 0; EINVAL for an empty or unterminated name; EEXIST if another
 * outgoing session of the caller has that name; EBUSY while PREPARED or
 * FROZEN; EDQUOT if the caller has max_sessions_per_user named outgoing
 * sessions (/sys/kernel/liveupdate; CAP_SYS_RESOURCE goes past it); ENOTTY on a
 * session fd that is not a /dev/liveupdate fd; EMFILE/ENOMEM.
 */
struct liveupdate_ioctl_create_session {
	__u32 size;
	__s32 fd;
	__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_IOCTL_CREATE_SESSION \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_CREATE_SESSION)

/**
 * struct liveupdate_ioctl_retrieve_session - ioctl(LIVEUPDATE_IOCTL_RETRIEVE_SESSION)
 * @size: input: sizeof(struct liveupdate_ioctl_retrieve_session).
 * @fd:   output: a file descriptor for the incoming session (close-on-exec).
 * @name: input: the name the session had in the previous kernel.
 *
 * Claims the caller's incoming session (one the previous kernel handed
 * over, created there by a user of the caller's euid) on a /dev/liveupdate
 * fd; with CAP_SYS_ADMIN and no session of its own of that name, the one
 * session of that name of any user. One fd holds it at a time; closing
 * that fd gives the claim up without ending the session, so it can be
 * retrieved again until it is finished.
 *
 * Return: 0; ENOENT if no incoming session has that name, or it is empty
 * (always, outside UPDATED); EACCES if only other users have one;
 * ENOTUNIQ if several users have one and the caller, with CAP_SYS_ADMIN,
 * has none; EINVAL if another fd holds it, or for an unterminated name.
 */
struct liveupdate_ioctl_retrieve_session {
	__u32 size;
	__s32 fd;
	__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_IOCTL_RETRIEVE_SESSION \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_RETRIEVE_SESSION)

/**
 * struct liveupdate_ioctl_get_state - ioctl(LIVEUPDATE_IOCTL_GET_STATE)
 * @size:  input: sizeof(struct liveupdate_ioctl_get_state).
 * @state: output: the global state, an &enum liveupdate_state.
 *
 * Any opener of /dev/liveupdate may ask; no capability is needed.
 *
 * Return: 0, or EINVAL/E2BIG/EFAULT for a bad struct.
 */
struct liveupdate_ioctl_get_state {
	__u32 size;
	__u32 state;
};

#define LIVEUPDATE_IOCTL_GET_STATE \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_GET_STATE)

/**
 * struct liveupdate_ioctl_set_event - ioctl(LIVEUPDATE_IOCTL_SET_EVENT)
 * @size:  input: sizeof(struct liveupdate_ioctl_set_event).
 * @event: input: an &enum liveupdate_event.
 *
 * Moves the global state machine; needs CAP_SYS_ADMIN. A plain kexec
 * (without events) runs the missing PREPARE and FREEZE itself, and aborts
 * the kexec if one fails.
 *
 * Return: 0 once the event's work is done; EPERM without CAP_SYS_ADMIN;
 * EOPNOTSUPP for an unknown @event, or with KHO off; EBUSY if @event is
 * not valid in the current state, or once a kexec has committed to the
 * handover; for PREPARE and FREEZE, ENOLINK if a preserved file came to
 * need a file that is not preserved in the same session, ELOOP if files
 * came to need each other in a cycle; for FREEZE of a preserved KVM
 * vCPU, EBUSY while a thread is in KVM_RUN on it, EINPROGRESS while its
 * last exit is not completed (one more KVM_RUN, with immediate_exit
 * set, completes it), EOPNOTSUPP if its guest turned hardware
 * virtualization on; the error of the failed
 * step (state rolled back to NORMAL) otherwise; EINVAL/E2BIG/EFAULT for
 * a bad struct.
 */
struct liveupdate_ioctl_set_event {
	__u32 size;
	__u32 event;
};

#define LIVEUPDATE_IOCTL_SET_EVENT \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SET_EVENT)

/**
 * struct liveupdate_session_preserve_fd - ioctl(LIVEUPDATE_SESSION_PRESERVE_FD)
 * @size:  input: sizeof(struct liveupdate_session_preserve_fd).
 * @fd:    input: the file descriptor to preserve.
 * @token: input: the caller's name for it; any value (0 included), unique
 *	   in the session.
 *
 * Adds a file to a named outgoing session. The session keeps a reference
 * to the file. A memfd's present pages are pinned and preserved here,
 * while the workload runs; PREPARE and FREEZE take in only the pages that
 * appeared since.
 * A file can be in one session only. Built in: memfds (not hugetlb ones),
 * preserved zero-copy with size, holes, seals, position and name; while
 * a memfd is preserved, truncating, growing or punching holes in it fails
 * with EPERM, and its size counts against the caller's RLIMIT_MEMLOCK
 * (charged to the process's pinned memory, VmPin, as RDMA does). With
 * KVM built in: KVM VMs (the VM file of KVM_CREATE_VM), carried as their
 * type; the new kernel gives back a new, empty VM of that type. And their
 * shared guest_memfds, zero-copy like memfds (fallocate() then fails
 * with EPERM), bound to the retrieved VM in the new kernel. And their
 * vCPUs (the vCPU file of KVM_CREATE_VCPU), whose architectural state is
 * captured at FREEZE (from then on their ioctls fail with EBUSY, until
 * CANCEL) and loaded into a vCPU of the retrieved VM. iommufd built in:
 * iommufds whose IOASes map only memfds (IOMMU_IOAS_MAP_FILE) preserved in
 * the same session; from PREPARE to CANCEL their IOASes refuse map,
 * unmap, copy, alloc and destroy with EBUSY, and the new kernel gives
 * back every IOAS at its id with every mapping at its IOVA. vfio-pci built
 * in: device files (the cdev) bound to a preserved iommufd and attached
 * to one of its IOASes; from PREPARE to CANCEL attach, detach, every
 * reset and low power fail with EBUSY (and on Intel VT-d, PREPARE hands its
 * page table over: ENOSPC beyond 8 devices of a domain or 46 domains), and
 * the new kernel holds the device for its retriever and gives the file
 * back bound and attached, not reset, adopting that page table.
 *
 * Return: 0; EBADF for a bad @fd, or a memfd not open read-write; ENOENT
 * if no file handler supports the
 * file (a /dev/liveupdate or session fd, for one); EPERM for a memfd
 * another user owns, or a VM, guest_memfd or vCPU of another process
 * (only its VMM may preserve it); EOPNOTSUPP for a VM of a type that
 * cannot cross (one with private memory or protected state), a
 * guest_memfd with private memory, or a vCPU of such a VM, or an iommufd
 * mapping something else than a memfd (user memory, a dma-buf); EPERM
 * also for an iommufd mapping a memfd not sealed with F_SEAL_SHRINK;
 * E2BIG for an iommufd mapping more than 64 memfds; EINVAL for a vfio
 * device file not bound to an iommufd, or opened through a VFIO group;
 * EOPNOTSUPP also for a device that cannot cross (not a physical PCI
 * function of vfio-pci itself, a VF, a PF with VFs, a no-IOMMU device, or
 * attached with a PASID, to a page table user space allocated or to a
 * nested one); ENOENT for a device not attached, EBUSY for one in low
 * power; EHWPOISON for a guest_memfd page the hardware reported
 * poisoned (also from PREPARE and FREEZE, for pages they take in); ENOMEM
 * if a memfd's or guest_memfd's
 * size would take the caller past its RLIMIT_MEMLOCK (CAP_IPC_LOCK goes
 * past it), or out of memory; EAGAIN if a write() held the memfd for
 * 2 s (try again); EINTR if killed while waiting or pinning (EIO, or
 * EBUSY for a page that could not be migrated, if pinning fails); EEXIST if
 * @token is used in the session; EBUSY if the file is preserved already,
 * while PREPARED or FROZEN, or while a kexec is starting; EINVAL on an
 * unnamed or incoming session; ENOLINK if the file needs a file (a
 * guest_memfd or vCPU its VM, an iommufd the memfds it maps, a vfio
 * device its iommufd) that is not
 * preserved in this session yet: those go first; EDQUOT if
 * the session's owner has max_files_per_user files preserved
 * (/sys/kernel/liveupdate; CAP_SYS_RESOURCE goes past it); E2BIG if the
 * session holds as many files as one handover blob carries (about 23,000
 * small memfds).
 */
struct liveupdate_session_preserve_fd {
	__u32 size;
	__s32 fd;
	__aligned_u64 token;
};

#define LIVEUPDATE_SESSION_PRESERVE_FD \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_PRESERVE_FD)

/**
 * struct liveupdate_session_retrieve_fd - ioctl(LIVEUPDATE_SESSION_RETRIEVE_FD)
 * @size:  input: sizeof(struct liveupdate_session_retrieve_fd).
 * @fd:    output: a new file descriptor (close-on-exec) for the file.
 * @token: input: the token the file was preserved with.
 *
 * On an incoming session, in UPDATED: the first successful call rebuilds
 * the file from the handover; later calls return new fds for the same
 * file. A failed call loses nothing: after ENOMEM (the memory is charged
 * to the caller's memory cgroup) another call, by a caller with more
 * memory, can succeed; SESSION_FINISH frees what is left. The files of
 * the session this file needs are rebuilt first if they are not yet
 * (later RETRIEVE_FDs of them return them); their errors are this call's.
 *
 * Return: 0; ENOENT for an unknown @token; EOPNOTSUPP while no handler of
 * the file's kind is registered (retry once one is); ENOMEM (retry with
 * more memory); EINVAL on an outgoing session or for a file whose record
 * is wrong; EBUSY outside UPDATED; for a KVM vCPU, EAGAIN until its VM
 * is set up for it (memory slots, in-kernel irqchip, the capabilities
 * its old VM had), EPERM from a process its VM does not serve, EACCES
 * without the guest's AMX permission (see Documentation/kvm.rst); the
 * handler's error otherwise.
 */
struct liveupdate_session_retrieve_fd {
	__u32 size;
	__s32 fd;
	__aligned_u64 token;
};

#define LIVEUPDATE_SESSION_RETRIEVE_FD \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_RETRIEVE_FD)

/**
 * struct liveupdate_session_unpreserve_fd - ioctl(LIVEUPDATE_SESSION_UNPRESERVE_FD)
 * @size:     input: sizeof(struct liveupdate_session_unpreserve_fd).
 * @reserved: must be zero (EINVAL otherwise).
 * @token:    input: the token the file was preserved with.
 *
 * Removes a file from an outgoing session and drops the session's
 * reference to it.
 *
 * Return: 0; ENOENT for an unknown @token; EBUSY while PREPARED or FROZEN,
 * or while another preserved file of the session needs this one;
 * EINVAL on an incoming session.
 */
struct liveupdate_session_unpreserve_fd {
	__u32 size;
	__u32 reserved;
	__aligned_u64 token;
};

#define LIVEUPDATE_SESSION_UNPRESERVE_FD \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_UNPRESERVE_FD)

/**
 * struct liveupdate_session_finish - ioctl(LIVEUPDATE_SESSION_FINISH)
 * @size:     input: sizeof(struct liveupdate_session_finish).
 * @reserved: must be zero (EINVAL otherwise).
 *
 * Ends an incoming session: every file handler lets go of what it kept
 * for the session's files (retrieved or not), and its name is free. When
 * the last incoming session is finished the global state returns from
 * UPDATED to NORMAL. Finishing a session again (or after a global FINISH)
 * succeeds and does nothing.
 *
 * Return: 0; EBUSY if a file handler cannot finish yet, or is not
 * registered (nothing changed);
 * EINVAL on an outgoing session or for non-zero @reserved.
 */
struct liveupdate_session_finish {
	__u32 size;
	__u32 reserved;
};

#define LIVEUPDATE_SESSION_FINISH \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_FINISH)

/**
 * struct liveupdate_session_get_name - ioctl(LIVEUPDATE_SESSION_GET_NAME)
 * @size:     input: sizeof(struct liveupdate_session_get_name).
 * @reserved: must be zero (EINVAL otherwise).
 * @name:     output: the session's name, NUL-padded; empty for a session
 *	      from open() that was never named.
 */
struct liveupdate_session_get_name {
	__u32 size;
	__u32 reserved;
	__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_SESSION_GET_NAME \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_GET_NAME)

/**
 * struct liveupdate_session_get_state - ioctl(LIVEUPDATE_SESSION_GET_STATE)
 * @size:     input: sizeof(struct liveupdate_session_get_state).
 * @state:    output: an &enum liveupdate_session_state.
 * @nr_files: output: files preserved in (outgoing) or left in (incoming)
 *	      the session.
 * @reserved: output: zero.
 *
 * Return: 0, or EINVAL/E2BIG/EFAULT for a bad struct.
 */
struct liveupdate_session_get_state {
	__u32 size;
	__u32 state;
	__u32 nr_files;
	__u32 reserved;
};

#define LIVEUPDATE_SESSION_GET_STATE \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_GET_STATE)

/**
 * struct liveupdate_session_set_name - ioctl(LIVEUPDATE_SESSION_SET_NAME)
 * @size:     input: sizeof(struct liveupdate_session_set_name).
 * @reserved: must be zero (EINVAL otherwise).
 * @name:     input: the new name, as for CREATE_SESSION.
 *
 * Names (or renames) an outgoing session, for example the session of an
 * open() of /dev/liveupdate. Only the session's owner may, or a caller
 * with CAP_SYS_ADMIN: a session fd passed to another user lets it add and
 * remove files, not move them under another name.
 *
 * Return: 0; EINVAL for a bad name or on an incoming session; EEXIST if
 * another outgoing session of the same user has that name; EBUSY while
 * PREPARED or FROZEN; EPERM if the caller is not the session's owner and
 * lacks CAP_SYS_ADMIN; EDQUOT when naming an unnamed session beyond
 * max_sessions_per_user (see CREATE_SESSION).
 */
struct liveupdate_session_set_name {
	__u32 size;
	__u32 reserved;
	__u8 name[LIVEUPDATE_SESSION_NAME_LENGTH];
};

#define LIVEUPDATE_SESSION_SET_NAME \
	_IO(LIVEUPDATE_IOCTL_TYPE, LIVEUPDATE_CMD_SESSION_SET_NAME)

#endif /* _UAPI_LIVEUPDATE_H */
