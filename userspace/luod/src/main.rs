// SPDX-License-Identifier: GPL-2.0

//! `luod`: the live update agent (see the library's documentation).

use clap::Parser;
use liveupdate::LiveUpdate;
use luod::daemon::{self, Config};
use luod::policy::Policy;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "luod",
    version,
    about = "The live update agent: hands sessions to the clients its policy names",
    long_about = "The live update agent. Clients (VMMs) connect on a Unix socket and ask for \
                  their session by name; luod creates it, or after a live update retrieves it, \
                  and passes the session fd, if the policy gives that name to the client's uid, \
                  gid and cgroup. A uid-0 client can ask for the update: luod tells every \
                  client to quiesce, waits for their answers, then PREPARE, FREEZE and kexec; \
                  any failure cancels and tells the clients to resume. After the update, \
                  sessions the policy names that nobody claims in time are finished. luod \
                  keeps no state of its own: sessions live in the kernel and in their clients, \
                  and after a restart of luod each client shows the new one the session it \
                  holds (hold, with the session fd); until all have, updates are refused.",
    after_help = "Exit status: 0 never (it serves until killed), 1 it could not start or \
                  its socket failed, 2 bad command line."
)]
struct Cli {
    /// The policy (TOML: [[allow]] rules of uid, gid, cgroup and sessions)
    #[arg(long, value_name = "FILE", default_value = "/etc/luod.toml")]
    policy: PathBuf,
    /// The socket clients connect to
    #[arg(long, value_name = "PATH", default_value = luod::client::SOCKET)]
    socket: PathBuf,
    /// The live update device
    #[arg(long, value_name = "PATH", default_value = liveupdate::DEVICE)]
    device: PathBuf,
    /// Seconds clients have to answer Quiesce before an update (1 to 3600)
    #[arg(long, value_name = "SECONDS", default_value_t = 10,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    quiesce_timeout: u64,
    /// Seconds after an update before sessions nobody claimed are finished (1 to 86400)
    #[arg(long, value_name = "SECONDS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..=86400))]
    claim_timeout: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("luod: {e}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: &Cli) -> Result<(), Box<dyn std::error::Error>> {
    let text = std::fs::read_to_string(&cli.policy)
        .map_err(|e| format!("{}: {e}", cli.policy.display()))?;
    let policy = Policy::parse(&text).map_err(|e| format!("{}: {e}", cli.policy.display()))?;
    let lu = LiveUpdate::open_path(&cli.device)?;
    let listener = luod::transport::listen(&cli.socket)
        .map_err(|e| format!("{}: {e}", cli.socket.display()))?;
    eprintln!(
        "luod: serving {} ({} rule(s)), state {}",
        cli.socket.display(),
        policy.allow.len(),
        lu.state()?
    );
    let config = Config {
        policy,
        quiesce_timeout: Duration::from_secs(cli.quiesce_timeout),
        claim_timeout: Duration::from_secs(cli.claim_timeout),
        status_view: liveupdate::status::STATUS.into(),
    };
    // A thread and a few fds per client: as many fds as luod may have.
    if let Some(limit) = rustix::process::getrlimit(rustix::process::Resource::Nofile).maximum {
        let _ = rustix::process::setrlimit(
            rustix::process::Resource::Nofile,
            rustix::process::Rlimit {
                current: Some(limit),
                maximum: Some(limit),
            },
        );
    }
    daemon::serve(lu, config, listener)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
