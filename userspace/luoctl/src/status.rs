// SPDX-License-Identifier: GPL-2.0

//! `luoctl status`: the global state from the device, and the sessions and
//! files from luo-rs's debugfs view where it can be read.

use liveupdate::status::{self, SessionInfo, Status};
use liveupdate::LiveUpdate;
use serde::Serialize;

#[derive(Serialize)]
struct Json<'a> {
    state: String,
    /// `None` where the view cannot be read (not root, no debugfs).
    kho: Option<bool>,
    incoming: Option<bool>,
    sessions: Option<Vec<Session<'a>>>,
}

#[derive(Serialize)]
struct Session<'a> {
    id: u64,
    origin: &'static str,
    name: &'a str,
    owner: u32,
    files: Vec<File<'a>>,
}

#[derive(Serialize)]
struct File<'a> {
    token: u64,
    handler: &'a str,
    status: &'a str,
}

fn json(state: String, view: Option<&Status>) -> String {
    let doc = Json {
        state,
        kho: view.map(|v| v.kho),
        incoming: view.map(|v| v.incoming),
        sessions: view.map(|v| {
            v.sessions
                .iter()
                .map(|s| Session {
                    id: s.id,
                    origin: if s.incoming { "incoming" } else { "outgoing" },
                    name: &s.name,
                    owner: s.owner,
                    files: s
                        .files
                        .iter()
                        .map(|f| File {
                            token: f.token,
                            handler: &f.handler,
                            status: &f.status,
                        })
                        .collect(),
                })
                .collect()
        }),
    };
    // Plain strings and numbers: serializing cannot fail.
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

fn text(state: &str, view: Option<&Status>, why: Option<&str>) -> String {
    let mut out = format!("state: {state}\n");
    let Some(v) = view else {
        out += &format!("sessions: unknown ({})\n", why.unwrap_or("no view"));
        return out;
    };
    out += &format!("kho: {}\n", if v.kho { "on" } else { "off" });
    out += &format!(
        "handover received: {}\n",
        if v.incoming { "yes" } else { "no" }
    );
    // Every open of /dev/liveupdate is a session too, unnamed until named:
    // counted, not listed, while it holds nothing.
    let idle = |s: &&SessionInfo| s.name.is_empty() && s.files.is_empty();
    let opens = v.sessions.iter().filter(idle).count();
    if opens > 0 {
        out += &format!("unnamed, empty sessions (open /dev/liveupdate fds): {opens}\n");
    }
    for s in v.sessions.iter().filter(|s| !idle(s)) {
        let name = if s.name.is_empty() {
            "(unnamed)"
        } else {
            &s.name
        };
        let origin = if s.incoming { "incoming" } else { "outgoing" };
        out += &format!(
            "session {name:?}: {origin}, uid {}, {} file(s)\n",
            s.owner,
            s.files.len()
        );
        for f in &s.files {
            out += &format!("  token {:#x}: {} ({})\n", f.token, f.handler, f.status);
        }
    }
    out
}

pub(crate) fn show(lu: &LiveUpdate, as_json: bool) -> liveupdate::Result<()> {
    let state = lu.state()?.to_string();
    let view = status::read(status::STATUS);
    let why = view.as_ref().err().map(|e| e.to_string());
    let view = view.ok();
    if as_json {
        println!("{}", json(state, view.as_ref()));
    } else {
        print!("{}", text(&state, view.as_ref(), why.as_deref()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VIEW: &str = concat!(
        "state: frozen\nkho: on\nincoming: no\n",
        "session 4: Outgoing \"vmm\" owner=1000 files=1\n",
        "  file token=0x10 handler=luo-rs,memfd-v1 prepared\n",
    );

    #[test]
    fn json_has_the_sessions_and_files() {
        let v = status::parse(VIEW).unwrap();
        let out: serde_json::Value =
            serde_json::from_str(&json("frozen".into(), Some(&v))).unwrap();
        assert_eq!(out["state"], "frozen");
        assert_eq!(out["sessions"][0]["name"], "vmm");
        assert_eq!(out["sessions"][0]["owner"], 1000);
        assert_eq!(out["sessions"][0]["files"][0]["token"], 16);
        assert_eq!(out["sessions"][0]["files"][0]["status"], "prepared");
    }

    #[test]
    fn json_says_when_sessions_are_unknown() {
        let out: serde_json::Value = serde_json::from_str(&json("normal".into(), None)).unwrap();
        assert!(out["sessions"].is_null());
        assert_eq!(out["state"], "normal");
    }

    #[test]
    fn text_lists_each_file() {
        let v = status::parse(VIEW).unwrap();
        let out = text("frozen", Some(&v), None);
        assert!(out.contains("session \"vmm\": outgoing, uid 1000, 1 file(s)"));
        assert!(out.contains("token 0x10: luo-rs,memfd-v1 (prepared)"));
        let opens = status::parse("state: normal\nsession 2: Outgoing \"\" owner=0 files=0\n");
        let out = text("normal", opens.as_ref(), None);
        assert!(out.contains("open /dev/liveupdate fds): 1"), "{out}");
        assert!(!out.contains("(unnamed)"), "{out}");
        let none = text("normal", None, Some("permission denied"));
        assert!(none.contains("sessions: unknown (permission denied)"));
    }
}
