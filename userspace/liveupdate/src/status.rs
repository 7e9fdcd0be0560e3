// SPDX-License-Identifier: GPL-2.0

//! luo-rs's debugfs view, `/sys/kernel/debug/liveupdate/status`: the
//! sessions and files of every user, which the ioctls (per session) do not
//! list. Root only, and only where debugfs is mounted.

use std::io;
use std::path::Path;

/// Where luo-rs shows it.
pub const STATUS: &str = "/sys/kernel/debug/liveupdate/status";

/// One file of a session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileInfo {
    /// The token it was preserved with.
    pub token: u64,
    /// Its handler's compatible string (`luo-rs,memfd-v1`, ...).
    pub handler: String,
    /// `preserved`, `prepared`, `incoming`, `retrieved`, ...
    pub status: String,
}

/// One session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionInfo {
    /// luo-rs's id for it (this boot only).
    pub id: u64,
    /// Whether it goes to the next kernel or came from the previous one.
    pub incoming: bool,
    /// Its name (empty if never named).
    pub name: String,
    /// The uid that owns it.
    pub owner: u32,
    /// Its files.
    pub files: Vec<FileInfo>,
}

/// What the view shows, as far as this crate reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    /// The global state's name (`normal`, ...).
    pub state: String,
    /// Whether Kexec HandOver is on.
    pub kho: bool,
    /// Whether this boot received a handover.
    pub incoming: bool,
    /// Every session.
    pub sessions: Vec<SessionInfo>,
}

/// Reads and parses [`STATUS`] (or another path).
pub fn read(path: impl AsRef<Path>) -> io::Result<Status> {
    let text = std::fs::read_to_string(path)?;
    parse(&text).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "unexpected format"))
}

/// Parses the view's text; `None` if a session or file line is malformed.
/// Lines it does not know (subsystems, newer fields) are skipped.
pub fn parse(text: &str) -> Option<Status> {
    let mut status = Status::default();
    for line in text.lines() {
        if let Some(file) = line.strip_prefix("  file ") {
            let session = status.sessions.last_mut()?;
            session.files.push(parse_file(file)?);
        } else if let Some(session) = line.strip_prefix("session ") {
            status.sessions.push(parse_session(session)?);
        } else if let Some((key, value)) = line.split_once(": ") {
            match key {
                "state" => status.state = value.to_string(),
                "kho" => status.kho = value == "on",
                "incoming" => status.incoming = value == "yes",
                _ => {}
            }
        }
    }
    Some(status)
}

/// `3: Outgoing "vmm" owner=0 files=2`
fn parse_session(s: &str) -> Option<SessionInfo> {
    let (id, rest) = s.split_once(": ")?;
    let (origin, rest) = rest.split_once(' ')?;
    let (name, rest) = parse_quoted(rest)?;
    let mut owner = None;
    for field in rest.split_whitespace() {
        if let Some(v) = field.strip_prefix("owner=") {
            owner = v.parse().ok();
        }
    }
    Some(SessionInfo {
        id: id.parse().ok()?,
        incoming: match origin {
            "Incoming" => true,
            "Outgoing" => false,
            _ => return None,
        },
        name,
        owner: owner?,
        files: Vec::new(),
    })
}

/// `token=0x1 handler=luo-rs,memfd-v1 preserved`
fn parse_file(s: &str) -> Option<FileInfo> {
    let mut fields = s.split_whitespace();
    let token = fields.next()?.strip_prefix("token=0x")?;
    let handler = fields.next()?.strip_prefix("handler=")?;
    Some(FileInfo {
        token: u64::from_str_radix(token, 16).ok()?,
        handler: handler.to_string(),
        status: fields.next()?.to_string(),
    })
}

/// A string as Rust's `{:?}` writes it, then the rest after a space.
fn parse_quoted(s: &str) -> Option<(String, &str)> {
    let mut chars = s.strip_prefix('"')?.char_indices();
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                let rest = &s[i + 2..];
                return Some((out, rest.strip_prefix(' ').unwrap_or(rest)));
            }
            '\\' => match chars.next()?.1 {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'u' => {
                    let hex: String = chars
                        .by_ref()
                        .map(|(_, c)| c)
                        .skip(1)
                        .take_while(|&c| c != '}')
                        .collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            c => out.push(c),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = "state: updated
kho: on
boot_id: 0x1234
sessions: 2
incoming: yes
incoming_generation: 1
incoming_boot_id: 0x99
session 1: Incoming \"vmm \\\"a\\\"\" owner=1000 files=2
  file token=0x1 handler=luo-rs,memfd-v1 retrieved
  file token=0x2a handler=luo-rs,iommufd-v1 incoming
session 7: Outgoing \"\" owner=0 files=0
subsystem luo-rs,test-v1: registered
";

    #[test]
    fn reads_state_sessions_and_files() {
        let s = parse(VIEW).unwrap();
        assert_eq!(s.state, "updated");
        assert!(s.kho && s.incoming);
        assert_eq!(s.sessions.len(), 2);
        let vmm = &s.sessions[0];
        assert_eq!((vmm.id, vmm.incoming, vmm.owner), (1, true, 1000));
        assert_eq!(vmm.name, "vmm \"a\"");
        assert_eq!(vmm.files.len(), 2);
        assert_eq!(vmm.files[1].token, 0x2a);
        assert_eq!(vmm.files[1].handler, "luo-rs,iommufd-v1");
        assert_eq!(vmm.files[0].status, "retrieved");
        assert_eq!(s.sessions[1].name, "");
        assert!(!s.sessions[1].incoming);
    }

    #[test]
    fn escapes_come_back() {
        let (name, rest) = parse_quoted("\"a\\u{1b}b\\\\\" owner=3").unwrap();
        assert_eq!(name, "a\u{1b}b\\");
        assert_eq!(rest, "owner=3");
    }

    #[test]
    fn malformed_lines_are_refused() {
        assert!(parse("session x: Outgoing \"a\" owner=0 files=0\n").is_none());
        assert!(parse("session 1: Sideways \"a\" owner=0 files=0\n").is_none());
        assert!(parse("session 1: Outgoing \"a owner=0\n").is_none());
        assert!(parse("  file token=0x1 handler=x preserved\n").is_none());
        assert!(parse("session 1: Outgoing \"a\" files=0\n").is_none());
    }

    #[test]
    fn unknown_lines_are_skipped() {
        let s = parse("state: normal\nsomething new: 5\n").unwrap();
        assert_eq!(s.state, "normal");
        assert!(s.sessions.is_empty());
    }
}
