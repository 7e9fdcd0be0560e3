// SPDX-License-Identifier: GPL-2.0

//! The socket: `AF_UNIX`, `SOCK_SEQPACKET`, messages of
//! [`crate::protocol`] with at most one fd each (`SCM_RIGHTS`), and who is
//! at the other end (`SO_PEERCRED`, and the cgroup of its pid).

use crate::policy::Client;
use crate::protocol::MAX_MESSAGE;
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

/// A listening socket at `path` (a stale one there is replaced), mode 0666:
/// the policy, not the file mode, says who gets what.
pub fn listen(path: &Path) -> io::Result<OwnedFd> {
    let fd = socket()?;
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    net::bind(&fd, &SocketAddrUnix::new(path).map_err(io_err)?).map_err(io_err)?;
    rustix::fs::chmod(path, rustix::fs::Mode::from_raw_mode(0o666)).map_err(io_err)?;
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
pub fn peer(conn: BorrowedFd<'_>) -> io::Result<Client> {
    let cred = net::sockopt::socket_peercred(conn).map_err(io_err)?;
    let pid = cred.pid.as_raw_nonzero().get();
    Ok(Client {
        uid: cred.uid.as_raw(),
        gid: cred.gid.as_raw(),
        cgroup: cgroup_of(pid),
    })
}

/// The cgroup v2 path of `pid` (`0::/path` in `/proc/PID/cgroup`).
fn cgroup_of(pid: i32) -> Option<String> {
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
    /// Fail with `EAGAIN` instead: a client that does not read must not
    /// hold luod up.
    No,
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
        Wait::No => SendFlags::NOSIGNAL | SendFlags::DONTWAIT,
    };
    net::sendmsg(conn, &[IoSlice::new(bytes)], &mut cmsg, flags).map_err(io_err)?;
    Ok(())
}

/// One received message and the fd that came with it. `Ok(None)` when the
/// other end closed.
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

/// Whether `conn` has a message waiting, within `timeout_ms`.
pub fn readable(conn: BorrowedFd<'_>, timeout_ms: i32) -> io::Result<bool> {
    use rustix::event::{poll, PollFd, PollFlags, Timespec};
    let mut fds = [PollFd::new(&conn, PollFlags::IN)];
    let timeout = Timespec {
        tv_sec: i64::from(timeout_ms / 1000),
        tv_nsec: i64::from(timeout_ms % 1000) * 1_000_000,
    };
    Ok(poll(&mut fds, Some(&timeout)).map_err(io_err)? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

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
            .find_map(|_| send(a.as_fd(), &[b'x'; 1024], None, Wait::No).err())
            .expect("the queue fills up");
        assert_eq!(err.kind(), io::ErrorKind::WouldBlock);
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
    }
}
