// SPDX-License-Identifier: GPL-2.0

//! The socket: `AF_UNIX`, `SOCK_SEQPACKET`, messages of
//! [`crate::protocol`] with at most one fd each (`SCM_RIGHTS`), and who is
//! at the other end (`SO_PEERCRED`, and the cgroup of its pid, trusted only
//! while `SO_PEERPIDFD` shows that very process alive).

use crate::policy::Peer;
use crate::protocol::MAX_MESSAGE;
use rustix::event::{poll, PollFd, PollFlags, Timespec};
use rustix::io::Errno;
use rustix::net::{
    self, AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags, SocketAddrUnix, SocketFlags, SocketType,
};
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::Path;

fn io_err(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

fn socket() -> io::Result<OwnedFd> {
    net::socket_with(
        AddressFamily::UNIX,
        SocketType::SEQPACKET,
        SocketFlags::CLOEXEC,
        None,
    )
    .map_err(io_err)
}

/// A listening socket at `path`, mode 0666 (the policy, not the file mode,
/// says who gets what); put it in a directory only root can write.
/// A socket left there by a luod that is gone is replaced; one another
/// luod answers on, or anything that is not a socket, is refused.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    use std::os::unix::fs::FileTypeExt;

    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.file_type().is_socket() => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "something that is not a socket is there",
            ))
        }
        Ok(_) if connect(path).is_ok() => {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                "another luod is serving there",
            ))
        }
        Ok(_) => std::fs::remove_file(path)?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let fd = socket()?;
    let addr = SocketAddrUnix::new(path).map_err(io_err)?;
    // The mode at creation, not a chmod of a path that may have changed.
    let old = rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o111));
    let bound = net::bind(&fd, &addr);
    rustix::process::umask(old);
    bound.map_err(io_err)?;
    net::listen(&fd, 64).map_err(io_err)?;
    Ok(fd)
}

/// The next connection.
pub fn accept(listener: BorrowedFd<'_>) -> io::Result<OwnedFd> {
    net::accept_with(listener, SocketFlags::CLOEXEC).map_err(io_err)
}

/// A connection to luod at `path`.
pub fn connect(path: &Path) -> io::Result<OwnedFd> {
    let fd = socket()?;
    net::connect(&fd, &SocketAddrUnix::new(path).map_err(io_err)?).map_err(io_err)?;
    Ok(fd)
}

/// Who is at the other end of `conn`.
pub fn peer(conn: BorrowedFd<'_>) -> io::Result<Peer> {
    let cred = peercred(conn)?;
    // The pid may be another process's by now: its cgroup counts only if
    // the peer itself is alive after it was read (then the pid is still its).
    let cgroup = (cred.pid > 0)
        .then(|| cgroup_of(cred.pid))
        .flatten()
        .filter(|_| peer_alive(conn));
    Ok(Peer {
        uid: cred.uid,
        gid: cred.gid,
        cgroup,
    })
}

/// `SO_PEERCRED`, whose pid is 0 for a peer outside luod's pid namespace.
fn peercred(conn: BorrowedFd<'_>) -> io::Result<libc::ucred> {
    use std::os::fd::AsRawFd;

    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are valid for writes of the sizes given.
    let ret = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    if ret != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(cred)
}

/// Whether the peer that connected is still alive (`SO_PEERPIDFD`); false
/// where the kernel cannot tell.
fn peer_alive(conn: BorrowedFd<'_>) -> bool {
    use std::os::fd::{AsRawFd, FromRawFd};

    const SO_PEERPIDFD: libc::c_int = 77;
    let mut pidfd: libc::c_int = -1;
    let mut len = size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: `pidfd` and `len` are valid for writes of the sizes given.
    let ret = unsafe {
        libc::getsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            SO_PEERPIDFD,
            (&mut pidfd as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if ret != 0 || pidfd < 0 {
        return false;
    }
    // SAFETY: the kernel just made `pidfd` for this process; nothing else
    // owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd) };
    // SAFETY: signal 0 only checks the process; no memory is passed.
    let sent = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            0,
            std::ptr::null::<libc::siginfo_t>(),
            0,
        )
    };
    sent == 0
}

/// The cgroup v2 path of `pid` (`0::/path` in `/proc/PID/cgroup`).
fn cgroup_of(pid: libc::pid_t) -> Option<String> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("0::"))
        .map(str::to_string)
}

/// Whether [`send`] may wait for room in the other end's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Wait (an answer to the client's own request).
    Yes,
    /// Wait up to this long, then fail with `EAGAIN`: a client that does
    /// not read must not hold luod up.
    UpTo(std::time::Duration),
}

/// Sends one message, with `fd` if there is one.
pub fn send(
    conn: BorrowedFd<'_>,
    bytes: &[u8],
    fd: Option<BorrowedFd<'_>>,
    wait: Wait,
) -> io::Result<()> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut cmsg = SendAncillaryBuffer::new(&mut space);
    let fds;
    if let Some(fd) = fd {
        fds = [fd];
        if !cmsg.push(SendAncillaryMessage::ScmRights(&fds)) {
            return Err(io_err(Errno::NOBUFS));
        }
    }
    let flags = match wait {
        Wait::Yes => SendFlags::NOSIGNAL,
        Wait::UpTo(time) => {
            if !time.is_zero() {
                wait_for(conn, PollFlags::OUT, Some(time))?;
            }
            SendFlags::NOSIGNAL | SendFlags::DONTWAIT
        }
    };
    net::sendmsg(conn, &[IoSlice::new(bytes)], &mut cmsg, flags).map_err(io_err)?;
    Ok(())
}

/// One received message and the fd that came with it. `Ok(None)` when the
/// other end closed; `InvalidData` for a message too long.
pub fn recv(conn: BorrowedFd<'_>) -> io::Result<Option<(Vec<u8>, Option<OwnedFd>)>> {
    let mut buf = vec![0u8; MAX_MESSAGE + 1];
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(4))];
    let mut cmsg = RecvAncillaryBuffer::new(&mut space);
    let got = net::recvmsg(
        conn,
        &mut [IoSliceMut::new(&mut buf)],
        &mut cmsg,
        RecvFlags::CMSG_CLOEXEC,
    )
    .map_err(io_err)?;
    let mut fd = None;
    for msg in cmsg.drain() {
        if let RecvAncillaryMessage::ScmRights(fds) = msg {
            // The first; any others are dropped (closed) here.
            for f in fds {
                fd.get_or_insert(f);
            }
        }
    }
    if got.bytes == 0 && fd.is_none() {
        return Ok(None);
    }
    if got.flags.contains(net::ReturnFlags::TRUNC) || got.bytes > MAX_MESSAGE {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "message too long",
        ));
    }
    buf.truncate(got.bytes);
    Ok(Some((buf, fd)))
}

/// Whether `conn` is ready for `what` within `timeout` (`None`: wait).
fn wait_for(
    conn: BorrowedFd<'_>,
    what: PollFlags,
    timeout: Option<std::time::Duration>,
) -> io::Result<bool> {
    // Too far to count: no deadline.
    let deadline = timeout.and_then(|t| std::time::Instant::now().checked_add(t));
    loop {
        let mut fds = [PollFd::new(&conn, what)];
        let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
        let timeout = left.map(|t| Timespec {
            tv_sec: i64::try_from(t.as_secs()).unwrap_or(i64::MAX),
            tv_nsec: i64::from(t.subsec_nanos()),
        });
        match poll(&mut fds, timeout.as_ref()) {
            // A signal: wait for what is left.
            Err(Errno::INTR) => continue,
            other => return Ok(other.map_err(io_err)? > 0),
        }
    }
}

/// Whether `conn` has a message waiting, within `timeout` (`None`: wait).
pub fn readable(conn: BorrowedFd<'_>, timeout: Option<std::time::Duration>) -> io::Result<bool> {
    wait_for(conn, PollFlags::IN, timeout)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;
    use std::time::Duration;

    fn pair() -> (OwnedFd, OwnedFd) {
        net::socketpair(
            AddressFamily::UNIX,
            SocketType::SEQPACKET,
            SocketFlags::CLOEXEC,
            None,
        )
        .unwrap()
    }

    #[test]
    fn a_message_and_its_fd_cross() {
        let (a, b) = pair();
        let file = std::fs::File::open("/dev/null").unwrap();
        send(a.as_fd(), b"hello", Some(file.as_fd()), Wait::Yes).unwrap();
        let (bytes, fd) = recv(b.as_fd()).unwrap().unwrap();
        assert_eq!(bytes, b"hello");
        assert!(fd.is_some());
    }

    #[test]
    fn messages_keep_their_boundaries() {
        let (a, b) = pair();
        send(a.as_fd(), b"one", None, Wait::Yes).unwrap();
        send(a.as_fd(), b"two", None, Wait::Yes).unwrap();
        assert_eq!(recv(b.as_fd()).unwrap().unwrap().0, b"one");
        assert_eq!(recv(b.as_fd()).unwrap().unwrap().0, b"two");
    }

    #[test]
    fn a_message_too_long_is_refused() {
        let (a, b) = pair();
        send(a.as_fd(), &vec![b'x'; MAX_MESSAGE + 10], None, Wait::Yes).unwrap();
        assert!(recv(b.as_fd()).is_err());
    }

    #[test]
    fn a_client_that_does_not_read_does_not_block() {
        let (a, _b) = pair();
        let err = (0..10_000)
            .find_map(|_| send(a.as_fd(), &[b'x'; 1024], None, Wait::UpTo(Duration::ZERO)).err())
            .expect("the queue fills up");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        // Waiting a while for room that does not come ends the same way.
        let t = std::time::Instant::now();
        let wait = Duration::from_millis(200);
        let err = send(a.as_fd(), b"x", None, Wait::UpTo(wait)).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
        assert!(t.elapsed() >= wait);
    }

    #[test]
    fn a_closed_end_is_seen() {
        let (a, b) = pair();
        drop(a);
        assert!(recv(b.as_fd()).unwrap().is_none());
    }

    #[test]
    fn the_peer_is_this_process() {
        let (a, _b) = pair();
        let me = peer(a.as_fd()).unwrap();
        assert_eq!(me.uid, rustix::process::getuid().as_raw());
        assert_eq!(me.gid, rustix::process::getgid().as_raw());
    }

    #[test]
    fn listen_refuses_what_is_not_a_stale_socket() {
        let dir = std::env::temp_dir().join(format!("luod-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("not-a-socket");
        std::fs::write(&file, b"policy").unwrap();
        assert!(listen(&file).is_err());
        assert_eq!(std::fs::read(&file).unwrap(), b"policy");
        let sock = dir.join("sock");
        let first = listen(&sock).unwrap();
        assert!(listen(&sock).is_err(), "a live luod's socket was taken");
        drop(first);
        assert!(listen(&sock).is_ok(), "a stale socket was not replaced");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
