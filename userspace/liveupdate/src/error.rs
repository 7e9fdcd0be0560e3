// SPDX-License-Identifier: GPL-2.0

//! Errors: which operation failed, its errno, and what that errno means
//! for that operation, as the uAPI header documents it.

use std::fmt;

/// What was being done when an [`Error`] happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Op {
    /// Opening `/dev/liveupdate`.
    Open,
    /// Reading the global state.
    GetState,
    /// Sending PREPARE.
    Prepare,
    /// Sending FREEZE.
    Freeze,
    /// Sending CANCEL.
    Cancel,
    /// Sending the global FINISH.
    Finish,
    /// Creating a named session.
    CreateSession,
    /// Retrieving an incoming session.
    RetrieveSession,
    /// Preserving a file in a session.
    Preserve,
    /// Removing a preserved file from a session.
    Unpreserve,
    /// Retrieving a preserved file.
    Retrieve,
    /// Finishing an incoming session.
    FinishSession,
    /// Reading a session's name.
    GetName,
    /// Naming a session.
    SetName,
    /// Reading a session's state.
    SessionState,
    /// Loading the next kernel (`kexec_file_load`).
    KexecLoad,
    /// Jumping into it (`reboot(LINUX_REBOOT_CMD_KEXEC)`).
    Kexec,
    /// Checking that an fd is a session (`/proc/self/fd`).
    Identify,
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Op::Open => "open /dev/liveupdate",
            Op::GetState => "GET_STATE",
            Op::Prepare => "PREPARE",
            Op::Freeze => "FREEZE",
            Op::Cancel => "CANCEL",
            Op::Finish => "FINISH",
            Op::CreateSession => "CREATE_SESSION",
            Op::RetrieveSession => "RETRIEVE_SESSION",
            Op::Preserve => "PRESERVE_FD",
            Op::Unpreserve => "UNPRESERVE_FD",
            Op::Retrieve => "RETRIEVE_FD",
            Op::FinishSession => "SESSION_FINISH",
            Op::GetName => "GET_NAME",
            Op::SetName => "SET_NAME",
            Op::SessionState => "SESSION_GET_STATE",
            Op::KexecLoad => "kexec_file_load",
            Op::Kexec => "kexec",
            Op::Identify => "identify a session fd",
        })
    }
}

/// A failed operation on `/dev/liveupdate` or a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Error {
    op: Op,
    errno: i32,
}

impl Error {
    pub(crate) fn new(op: Op, errno: i32) -> Self {
        Self { op, errno }
    }

    /// The operation that failed.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The errno it failed with (`libc::EBUSY`, ...).
    pub fn errno(&self) -> i32 {
        self.errno
    }

    /// What the errno means for this operation, where the uAPI documents
    /// it.
    pub fn meaning(&self) -> Option<&'static str> {
        meaning(self.op, self.errno)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let io = std::io::Error::from_raw_os_error(self.errno);
        write!(f, "{}: {}", self.op, io)?;
        if let Some(m) = self.meaning() {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

impl From<Error> for std::io::Error {
    fn from(e: Error) -> Self {
        std::io::Error::new(std::io::Error::from_raw_os_error(e.errno).kind(), e)
    }
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

fn meaning(op: Op, errno: i32) -> Option<&'static str> {
    use libc::*;
    let event = matches!(op, Op::Prepare | Op::Freeze | Op::Cancel | Op::Finish);
    Some(match (op, errno) {
        (Op::Open, ENOENT) => {
            "no such device: no live update orchestrator (luo-rs or CONFIG_LIVEUPDATE) here?"
        }
        (Op::Open, EACCES) => {
            "root only by default (0600): run as root or ask for the device's group"
        }
        (_, EPERM) if event => "needs CAP_SYS_ADMIN",
        (Op::Freeze, EBUSY) => {
            "a thread is in KVM_RUN on a preserved vCPU (pause the VMs first), or not PREPARED"
        }
        (Op::Freeze, EINPROGRESS) => {
            "a preserved vCPU's last exit is not completed: run it once more, then pause it"
        }
        (_, EBUSY) if event => {
            "not valid in the current state, or a kexec has committed to the handover"
        }
        (_, EOPNOTSUPP) if event => "unknown event, or Kexec HandOver is off",
        (_, ENOLINK) if event => {
            "a preserved file needs a file that is not preserved in its session"
        }
        (_, ELOOP) if event => "files of a session need each other in a loop",
        (Op::CreateSession | Op::SetName, EEXIST) => {
            "the session's owner has an outgoing session of that name"
        }
        (Op::CreateSession | Op::SetName, EBUSY) => "not while PREPARED or FROZEN",
        (Op::CreateSession | Op::SetName, EDQUOT) => {
            "the session's owner has max_sessions_per_user named sessions"
        }
        (Op::SetName, EPERM) => "only the session's owner (or CAP_SYS_ADMIN) may rename it",
        (Op::CreateSession | Op::SetName, EINVAL) => "a session name is 1 to 63 bytes, without NUL",
        (Op::RetrieveSession, ENOENT) => "no incoming session of that name (or not UPDATED)",
        (Op::RetrieveSession, EACCES) => "only other users have an incoming session of that name",
        (Op::RetrieveSession, ENOTUNIQ) => "several users have one, and the caller has none",
        (Op::RetrieveSession, EINVAL) => "another fd holds it, or the name is bad",
        (Op::Preserve, EBADF) => "not an open file, or a memfd not open read-write",
        (Op::Preserve, ENOENT) => {
            "no handler preserves this kind of file, or a vfio device is not attached"
        }
        (Op::Preserve, EEXIST) => "the token is used in this session",
        (Op::Preserve, EBUSY) => {
            "the file is preserved already, not while PREPARED or FROZEN, a device in low power, or a page that could not be migrated for pinning"
        }
        (Op::Preserve, EINVAL) => "the session is unnamed or incoming",
        (Op::Preserve, ENOLINK) => {
            "a file it needs is not preserved in this session yet: preserve that first"
        }
        (Op::Preserve, EDQUOT) => "the session's owner has max_files_per_user files preserved",
        (Op::Preserve, ENOMEM) => "past RLIMIT_MEMLOCK, or out of memory",
        (Op::Preserve, EAGAIN) => "a write held the memfd: try again",
        (Op::Preserve, E2BIG) => {
            "the session holds as many files as one handover carries, or an iommufd maps more than 64 memfds"
        }
        (Op::Preserve, EPERM) => {
            "a memfd of another user, a VM, guest_memfd or vCPU of another process, or an iommufd mapping a memfd without F_SEAL_SHRINK"
        }
        (Op::Preserve, EOPNOTSUPP) => {
            "this VM, guest_memfd, vCPU, iommufd mapping or device cannot cross (see the uAPI header)"
        }
        (Op::Preserve, EHWPOISON) => "a guest_memfd page the hardware reported poisoned",
        (Op::Preserve, EINTR) => "killed while waiting or pinning",
        (Op::Preserve, EIO) => "pinning the memory failed",
        (Op::Unpreserve | Op::Retrieve, ENOENT) => "no file with that token",
        (Op::Unpreserve, EBUSY) => {
            "not while PREPARED or FROZEN, or another file of the session needs it"
        }
        (Op::Unpreserve | Op::Retrieve | Op::FinishSession, EINVAL) => {
            "not on this kind of session (outgoing or incoming)"
        }
        (Op::Retrieve, EOPNOTSUPP) => {
            "no handler of the file's kind is registered yet: retry once one is"
        }
        (Op::Retrieve, EBUSY) => "not UPDATED: there is nothing to retrieve",
        (Op::Retrieve, EAGAIN) => {
            "a vCPU's VM is not set up for it yet (memory slots, irqchip, capabilities): retry"
        }
        (Op::Retrieve, EPERM) => "a vCPU, from a process its VM does not serve",
        (Op::Retrieve, EACCES) => "a vCPU, without the guest's AMX permission",
        (Op::Retrieve, ENOMEM) => {
            "out of memory: a retry with more memory can succeed, nothing is lost"
        }
        (Op::FinishSession, EBUSY) => "a file handler cannot finish yet: nothing changed",
        (Op::KexecLoad | Op::Kexec, EPERM) => "needs CAP_SYS_BOOT",
        (Op::KexecLoad, ENOEXEC) => {
            "not a kernel image kexec_file_load takes (a relocatable bzImage)"
        }
        (Op::KexecLoad, EKEYREJECTED) => "the kernel's signature was refused",
        (Op::KexecLoad, EBUSY) => "a kexec is under way",
        (Op::Kexec, EINVAL) => "no kernel is loaded",
        (Op::Kexec, _) => {
            "the kexec was refused (its own PREPARE or FREEZE, or the handover): see the kernel log"
        }
        (Op::Identify, ENOTTY) => "the fd is not a session (another kind of file)",
        (Op::Identify, ENOENT) => "/proc is not mounted: it tells what an fd is",
        (_, ENOTTY) => "not a /dev/liveupdate or session fd, or the kernel lacks this command",
        (_, E2BIG) => "the kernel does not know a part of the struct that is not zero",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_what_failed_and_why() {
        let e = Error::new(Op::Preserve, libc::ENOLINK);
        let text = e.to_string();
        assert!(text.starts_with("PRESERVE_FD: "), "{text}");
        assert!(text.contains("preserve that first"), "{text}");
        assert_eq!(e.errno(), libc::ENOLINK);
        assert_eq!(e.op(), Op::Preserve);
    }

    #[test]
    fn the_same_errno_means_what_the_operation_says() {
        let prepare = Error::new(Op::Prepare, libc::EBUSY).meaning();
        let unpreserve = Error::new(Op::Unpreserve, libc::EBUSY).meaning();
        assert_ne!(prepare, unpreserve);
        assert!(prepare.is_some() && unpreserve.is_some());
    }

    #[test]
    fn an_undocumented_errno_has_no_meaning_but_still_prints() {
        let e = Error::new(Op::GetName, libc::EIO);
        assert_eq!(e.meaning(), None);
        assert!(e.to_string().starts_with("GET_NAME: "));
    }

    /// The uAPI header, whose `Return:` paragraphs the table must follow.
    const HEADER: &str = include_str!("../../../include/uapi/linux/liveupdate.h");

    /// The errnos the table or the header may name.
    const ERRNOS: &[(&str, i32)] = &[
        ("EPERM", libc::EPERM),
        ("ENOENT", libc::ENOENT),
        ("EINTR", libc::EINTR),
        ("EIO", libc::EIO),
        ("E2BIG", libc::E2BIG),
        ("EBADF", libc::EBADF),
        ("EAGAIN", libc::EAGAIN),
        ("ENOMEM", libc::ENOMEM),
        ("EACCES", libc::EACCES),
        ("EFAULT", libc::EFAULT),
        ("EBUSY", libc::EBUSY),
        ("EEXIST", libc::EEXIST),
        ("EINVAL", libc::EINVAL),
        ("EMFILE", libc::EMFILE),
        ("ENOTTY", libc::ENOTTY),
        ("ELOOP", libc::ELOOP),
        ("ENOLINK", libc::ENOLINK),
        ("ENOTUNIQ", libc::ENOTUNIQ),
        ("EOPNOTSUPP", libc::EOPNOTSUPP),
        ("EDQUOT", libc::EDQUOT),
        ("EINPROGRESS", libc::EINPROGRESS),
        ("EHWPOISON", libc::EHWPOISON),
    ];

    /// The ioctl behind each operation that is one.
    const IOCTLS: &[(Op, &str)] = &[
        (Op::GetState, "LIVEUPDATE_IOCTL_GET_STATE"),
        (Op::Prepare, "LIVEUPDATE_IOCTL_SET_EVENT"),
        (Op::Freeze, "LIVEUPDATE_IOCTL_SET_EVENT"),
        (Op::Cancel, "LIVEUPDATE_IOCTL_SET_EVENT"),
        (Op::Finish, "LIVEUPDATE_IOCTL_SET_EVENT"),
        (Op::CreateSession, "LIVEUPDATE_IOCTL_CREATE_SESSION"),
        (Op::RetrieveSession, "LIVEUPDATE_IOCTL_RETRIEVE_SESSION"),
        (Op::Preserve, "LIVEUPDATE_SESSION_PRESERVE_FD"),
        (Op::Unpreserve, "LIVEUPDATE_SESSION_UNPRESERVE_FD"),
        (Op::Retrieve, "LIVEUPDATE_SESSION_RETRIEVE_FD"),
        (Op::FinishSession, "LIVEUPDATE_SESSION_FINISH"),
        (Op::GetName, "LIVEUPDATE_SESSION_GET_NAME"),
        (Op::SetName, "LIVEUPDATE_SESSION_SET_NAME"),
        (Op::SessionState, "LIVEUPDATE_SESSION_GET_STATE"),
    ];

    /// The errno names in the `Return:` paragraph of `ioctl`'s comment.
    fn documented(ioctl: &str) -> Vec<&'static str> {
        let tag = format!("- ioctl({ioctl})");
        let block = HEADER
            .split("/**")
            .find(|b| b.lines().nth(1).is_some_and(|l| l.ends_with(&tag)))
            .unwrap_or_else(|| panic!("no comment for {ioctl}"));
        let block = &block[..block.find("*/").unwrap()];
        let Some(at) = block.find("Return:") else {
            return Vec::new();
        };
        block[at..]
            .split(|c: char| !c.is_ascii_alphanumeric())
            .filter(|w| {
                w.len() > 1
                    && w.starts_with('E')
                    && w[1..]
                        .bytes()
                        .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            })
            .collect()
    }

    #[test]
    fn every_meaning_is_one_the_header_documents() {
        for &(op, ioctl) in IOCTLS {
            let documented = documented(ioctl);
            for &(name, errno) in ERRNOS {
                // Every command of every fd: the header's general list.
                if matches!(errno, libc::ENOTTY | libc::E2BIG) {
                    continue;
                }
                if meaning(op, errno).is_some() {
                    assert!(
                        documented.contains(&name),
                        "{op} {name} has a meaning, but {ioctl}'s Return: does not name it"
                    );
                }
            }
        }
    }

    #[test]
    fn every_errno_the_header_documents_has_a_meaning() {
        // Those that say the same for every command: a bad struct, out of
        // fds or memory, a bad pointer.
        let generic = [
            libc::EFAULT,
            libc::EMFILE,
            libc::ENOMEM,
            libc::EINVAL,
            libc::E2BIG,
        ];
        let mut missing = Vec::new();
        for &(_, ioctl) in IOCTLS {
            // SET_EVENT is four operations: one of them says it.
            let ops: Vec<Op> = IOCTLS
                .iter()
                .filter(|(_, i)| *i == ioctl)
                .map(|(op, _)| *op)
                .collect();
            for name in documented(ioctl) {
                let &(_, errno) = ERRNOS
                    .iter()
                    .find(|(n, _)| *n == name)
                    .unwrap_or_else(|| panic!("{ioctl} names {name}, unknown to this test"));
                if !generic.contains(&errno) && ops.iter().all(|op| meaning(*op, errno).is_none()) {
                    missing.push(format!("{ioctl} {name}"));
                }
            }
        }
        missing.dedup();
        assert!(
            missing.is_empty(),
            "documented, with no meaning: {missing:?}"
        );
    }

    #[test]
    fn converts_to_io_error_keeping_the_kind() {
        let io: std::io::Error = Error::new(Op::Retrieve, libc::ENOENT).into();
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
