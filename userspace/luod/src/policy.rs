// SPDX-License-Identifier: GPL-2.0

//! The policy: which clients may create and later reclaim which sessions.
//!
//! A TOML file of rules. A client (known by its socket's `SO_PEERCRED`
//! uid and gid, and its cgroup) matches a rule when every field the rule
//! gives matches; it may use a session name if a rule it matches lists
//! the name, exactly or by a prefix ending in `*`. Nothing else is
//! allowed: no rule, no session.
//!
//! All of luod's sessions are its user's in the kernel, so the kernel's
//! per-user limit on sessions is shared by every client. A rule's
//! `max_sessions` bounds the sessions its patterns name that exist at
//! once, so that a client with a prefix cannot take them all.
//!
//! ```toml
//! [[allow]]
//! uid = 1000
//! sessions = ["vm-a", "vm-a-*"]
//! max_sessions = 4
//!
//! [[allow]]
//! gid = 2000
//! cgroup = "/machine.slice/vm-b.scope"
//! sessions = ["vm-b"]
//! ```

use serde::Deserialize;
use std::fmt;

/// Who is asking (at the other end of the socket).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its uid (`SO_PEERCRED`).
    pub uid: u32,
    /// Its primary gid (`SO_PEERCRED`).
    pub gid: u32,
    /// Its cgroup v2 path (`/proc/PID/cgroup`), where known.
    pub cgroup: Option<String>,
}

/// One rule.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The client's uid, if the rule names one.
    pub uid: Option<u32>,
    /// The client's gid, if the rule names one.
    pub gid: Option<u32>,
    /// The client's cgroup (exact), if the rule names one.
    pub cgroup: Option<String>,
    /// Session names: exact, or a prefix ending in `*`.
    pub sessions: Vec<String>,
    /// At most this many outgoing sessions that `sessions` names may exist
    /// at once (none: no bound but the kernel's).
    pub max_sessions: Option<u32>,
}

/// The whole policy.
#[derive(Clone, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The rules, in any order.
    #[serde(default)]
    pub allow: Vec<Rule>,
}

/// Why a policy cannot be used.
#[derive(Debug)]
pub struct PolicyError(String);

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PolicyError {}

/// A name pattern: `vm-a` or `vm-*`.
fn pattern_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix) && name.len() > prefix.len(),
        None => pattern == name,
    }
}

/// What a session name may be: the kernel's rule for its [`kernel_name`]
/// (1 to [`MAX_NAME`] bytes, no NUL).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && liveupdate::name::valid(&kernel_name(name))
}

/// The kernel's name of luod's session `name`. luod's sessions live under
/// their own prefix, so that they never meet the other sessions of luod's
/// user (root's, such as systemd's "systemd").
pub fn kernel_name(name: &str) -> String {
    format!("{KERNEL_PREFIX}{name}")
}

/// The prefix of [`kernel_name`].
pub const KERNEL_PREFIX: &str = "luod/";

/// The longest name a client can ask for.
pub const MAX_NAME: usize = liveupdate::name::MAX - KERNEL_PREFIX.len();

impl Rule {
    /// Whether one of its patterns matches `name`.
    fn names(&self, name: &str) -> bool {
        self.sessions.iter().any(|p| pattern_matches(p, name))
    }

    fn covers(&self, peer: &Peer) -> bool {
        self.uid.is_none_or(|u| u == peer.uid)
            && self.gid.is_none_or(|g| g == peer.gid)
            && self
                .cgroup
                .as_deref()
                .is_none_or(|c| peer.cgroup.as_deref() == Some(c))
    }
}

impl Policy {
    /// Parses and checks a policy: every rule names at least one client
    /// field and one session pattern, and every pattern could match a
    /// session name.
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let policy: Policy = toml::from_str(text).map_err(|e| PolicyError(e.to_string()))?;
        for (i, rule) in policy.allow.iter().enumerate() {
            let n = i + 1;
            if rule.uid.is_none() && rule.gid.is_none() && rule.cgroup.is_none() {
                return Err(PolicyError(format!(
                    "rule {n}: names no uid, gid or cgroup (it would allow anyone)"
                )));
            }
            if rule.sessions.is_empty() || rule.max_sessions == Some(0) {
                return Err(PolicyError(format!("rule {n}: allows no session")));
            }
            if rule.cgroup.as_deref().is_some_and(|c| !c.starts_with('/')) {
                return Err(PolicyError(format!(
                    "rule {n}: a cgroup is a path from the root, /..."
                )));
            }
            for p in &rule.sessions {
                // A prefix of at least one byte, and room after it.
                let stem = p.strip_suffix('*').unwrap_or(p);
                if stem.contains('*')
                    || !valid_name(stem)
                    || (p.ends_with('*') && stem.len() == MAX_NAME)
                {
                    return Err(PolicyError(format!(
                        "rule {n}: {p:?} is not a session name (1 to {MAX_NAME} bytes) or NAME-PREFIX*"
                    )));
                }
            }
        }
        Ok(policy)
    }

    /// Whether `client` may create or reclaim the session `name`.
    pub fn allows(&self, peer: &Peer, name: &str) -> bool {
        valid_name(name) && self.allow.iter().any(|r| r.covers(peer) && r.names(name))
    }

    /// Whether a rule that gives `name` to `peer` has room for one more
    /// session, with the outgoing sessions `existing` (client names)
    /// there now.
    pub fn has_room<'a>(
        &self,
        peer: &Peer,
        name: &str,
        existing: impl Iterator<Item = &'a str> + Clone,
    ) -> bool {
        self.allow
            .iter()
            .filter(|r| r.covers(peer) && r.names(name))
            .any(|r| match r.max_sessions {
                None => true,
                Some(max) => {
                    let named = existing.clone().filter(|e| r.names(e)).count();
                    named < max as usize
                }
            })
    }

    /// Whether every rule that gives `name` to `peer` bounds its sessions,
    /// so that [`Policy::has_room`] needs the sessions that exist.
    pub fn bounded(&self, peer: &Peer, name: &str) -> bool {
        self.allow
            .iter()
            .filter(|r| r.covers(peer) && r.names(name))
            .all(|r| r.max_sessions.is_some())
    }

    /// Whether any rule covers `peer`: a client no rule covers has nothing
    /// to ask luod for.
    pub fn covers(&self, peer: &Peer) -> bool {
        self.allow.iter().any(|r| r.covers(peer))
    }

    /// Whether any client at all may use the session `name`: luod claims
    /// no other session, so that it never takes one from a client that
    /// does not go through it.
    pub fn names(&self, name: &str) -> bool {
        self.allow.iter().any(|r| r.names(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
[[allow]]
uid = 1000
sessions = ["vm-a", "vm-a-*"]

[[allow]]
gid = 2000
cgroup = "/machine.slice/vm-b.scope"
sessions = ["vm-b"]
"#;

    fn client(uid: u32, gid: u32, cgroup: Option<&str>) -> Peer {
        Peer {
            uid,
            gid,
            cgroup: cgroup.map(str::to_string),
        }
    }

    #[test]
    fn each_client_gets_only_its_own() {
        let p = Policy::parse(POLICY).unwrap();
        let a = client(1000, 1000, None);
        let b = client(1001, 2000, Some("/machine.slice/vm-b.scope"));
        assert!(p.allows(&a, "vm-a"));
        assert!(p.allows(&a, "vm-a-disk"));
        assert!(!p.allows(&a, "vm-b"));
        assert!(p.allows(&b, "vm-b"));
        assert!(!p.allows(&b, "vm-a"));
    }

    #[test]
    fn every_field_of_a_rule_must_match() {
        let p = Policy::parse(POLICY).unwrap();
        assert!(!p.allows(&client(1001, 2000, None), "vm-b"));
        assert!(!p.allows(&client(1001, 2000, Some("/other.scope")), "vm-b"));
        assert!(!p.allows(
            &client(1001, 2001, Some("/machine.slice/vm-b.scope")),
            "vm-b"
        ));
    }

    #[test]
    fn a_prefix_needs_something_after_it() {
        let p = Policy::parse(POLICY).unwrap();
        assert!(!p.allows(&client(1000, 0, None), "vm-a-"));
        assert!(!p.allows(&client(1000, 0, None), "vm-ab"));
    }

    #[test]
    fn names_are_checked_as_the_kernel_does() {
        let p = Policy::parse("[[allow]]\nuid = 0\nsessions = [\"x*\"]\n").unwrap();
        let root = client(0, 0, None);
        assert!(p.allows(&root, "xy"));
        assert!(p.allows(&root, &format!("x{}", "y".repeat(MAX_NAME - 1))));
        assert!(!p.allows(&root, &format!("x{}", "y".repeat(MAX_NAME))));
        assert!(!p.allows(&root, ""));
        assert!(!p.allows(&root, "x\0y"));
    }

    #[test]
    fn luod_names_only_what_its_rules_list() {
        let p = Policy::parse(POLICY).unwrap();
        assert!(p.names("vm-a-1") && p.names("vm-b"));
        assert!(!p.names("systemd"));
    }

    #[test]
    fn bad_policies_are_refused_with_the_rule() {
        for (text, says) in [
            ("[[allow]]\nsessions = [\"a\"]\n", "rule 1: names no uid"),
            (
                "[[allow]]\nuid = 1\nsessions = []\n",
                "rule 1: allows no session",
            ),
            (
                "[[allow]]\nuid = 1\nsessions = [\"\"]\n",
                "is not a session name",
            ),
            (
                "[[allow]]\nuid = 1\nsessions = [\"a*b\"]\n",
                "is not a session name",
            ),
            (
                "[[allow]]\nuid = 1\nsessions = [\"*\"]\n",
                "is not a session name",
            ),
            (
                "[[allow]]\ncgroup = \"x.scope\"\nsessions = [\"a\"]\n",
                "a cgroup is a path",
            ),
            (
                "[[allow]]\nuid = 1\nsessions = [\"a\"]\nfoo = 2\n",
                "unknown field",
            ),
            ("[[allow]]\nuid = -1\nsessions = [\"a\"]\n", "invalid value"),
            ("allow = 3\n", "invalid type"),
        ] {
            let e = Policy::parse(text).unwrap_err().to_string();
            assert!(e.contains(says), "{text:?}: {e}");
        }
    }

    #[test]
    fn an_empty_policy_allows_nothing() {
        let p = Policy::parse("").unwrap();
        assert!(!p.allows(&client(0, 0, None), "anything"));
    }

    #[test]
    fn max_sessions_bounds_what_a_rule_names() {
        let p = Policy::parse(
            r#"
[[allow]]
uid = 1000
sessions = ["vm-*"]
max_sessions = 2

[[allow]]
uid = 1000
sessions = ["vm-x"]
"#,
        )
        .unwrap();
        let a = client(1000, 1000, None);
        assert!(p.bounded(&a, "vm-3"));
        assert!(!p.bounded(&a, "vm-x"));
        let two = ["vm-1", "vm-2", "other"];
        assert!(p.has_room(&a, "vm-3", two[..1].iter().copied()));
        assert!(!p.has_room(&a, "vm-3", two.iter().copied()));
        // Another rule gives vm-x without a bound.
        assert!(p.has_room(&a, "vm-x", two.iter().copied()));
        assert!(!Policy::parse(POLICY).unwrap().bounded(&a, "vm-a"));
        let zero = "[[allow]]\nuid = 1\nsessions = [\"a\"]\nmax_sessions = 0\n";
        assert!(Policy::parse(zero).is_err());
    }
}
