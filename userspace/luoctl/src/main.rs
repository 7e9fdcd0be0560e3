// SPDX-License-Identifier: GPL-2.0

//! `luoctl`: the operator's tool for a live update on luo-rs. It shows
//! where the update stands, sends the state machine's events, loads the
//! next kernel, and runs the whole update (PREPARE, FREEZE, kexec) in one
//! step that cancels on any failure.

mod status;
mod update;

use clap::{Parser, Subcommand};
use liveupdate::{kexec, Event, LiveUpdate};
use std::path::PathBuf;
use std::process::ExitCode;

const EXIT_CODES: &str = "\
Exit status:
  0  done
  1  the kernel refused (the message names the operation, its errno and
     what it means there); nothing changed
  2  bad command line
  3  `update` stopped and cancelled: the system is back to normal
  4  `update` stopped and its CANCEL failed too, or luod went away during
     it: see `luoctl status`";

/// The exit codes of `EXIT_CODES`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Exit {
    Refused = 1,
    Cancelled = 3,
    CancelFailed = 4,
}

impl From<Exit> for ExitCode {
    fn from(e: Exit) -> Self {
        ExitCode::from(e as u8)
    }
}

#[derive(Parser)]
#[command(
    name = "luoctl",
    version,
    about = "Drive a live update: show its state, send its events, load the next kernel, update",
    long_about = "Drive a live update on luo-rs (/dev/liveupdate): a kexec into a new kernel \
                  that keeps the files VMMs preserved in their sessions (guest memory, iommufds, \
                  vfio devices, KVM VMs). The events need CAP_SYS_ADMIN, loading and jumping \
                  CAP_SYS_BOOT.",
    after_help = EXIT_CODES
)]
struct Cli {
    /// The live update device
    #[arg(long, value_name = "PATH", default_value = liveupdate::DEVICE)]
    device: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Show the state, and every session with its files (those need root and debugfs)
    Status {
        /// Print JSON instead
        #[arg(long)]
        json: bool,
    },
    /// NORMAL -> PREPARED: preserve and serialize while the workloads run
    Prepare,
    /// PREPARED -> FROZEN: the short last step; the update is committed
    Freeze,
    /// PREPARED or FROZEN -> NORMAL: undo the update completely
    Cancel,
    /// UPDATED -> NORMAL: free every incoming session nobody retrieved
    Finish,
    /// Load the kernel to update to (kexec_file_load)
    Load {
        /// The kernel image (bzImage)
        kernel: PathBuf,
        /// Its initramfs
        #[arg(long, value_name = "FILE")]
        initrd: Option<PathBuf>,
        /// Its command line
        #[arg(long, value_name = "CMDLINE", conflicts_with = "reuse_cmdline")]
        append: Option<String>,
        /// Give it this kernel's command line
        #[arg(long)]
        reuse_cmdline: bool,
    },
    /// PREPARE, FREEZE and kexec into the loaded kernel; cancel on any failure
    Update {
        /// Ask luod to run it, after quiescing its clients
        #[arg(long, value_name = "SOCKET")]
        luod: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err((exit, message)) => {
            eprintln!("luoctl: {message}");
            exit.into()
        }
    }
}

type Outcome = Result<(), (Exit, String)>;

fn refused(e: impl std::fmt::Display) -> (Exit, String) {
    (Exit::Refused, e.to_string())
}

fn run(cli: Cli) -> Outcome {
    let open = || LiveUpdate::open_path(&cli.device).map_err(refused);
    match cli.command {
        Command::Status { json } => status::show(&open()?, json).map_err(refused),
        Command::Prepare => open()?.event(Event::Prepare).map_err(refused),
        Command::Freeze => open()?.event(Event::Freeze).map_err(refused),
        Command::Cancel => open()?.event(Event::Cancel).map_err(refused),
        Command::Finish => open()?.event(Event::Finish).map_err(refused),
        Command::Load {
            kernel,
            initrd,
            append,
            reuse_cmdline,
        } => {
            let cmdline = match (append, reuse_cmdline) {
                (_, true) => kexec::current_cmdline().map_err(refused)?,
                (Some(s), false) => s,
                (None, false) => String::new(),
            };
            kexec::load(&kernel, initrd.as_deref(), &cmdline).map_err(refused)
        }
        Command::Update { luod: None } => update::run(&open()?),
        Command::Update { luod: Some(socket) } => update::through_luod(&socket),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn append_and_reuse_cmdline_exclude_each_other() {
        let r = Cli::try_parse_from(["luoctl", "load", "bz", "--append", "x", "--reuse-cmdline"]);
        assert!(r.is_err());
    }

    #[test]
    fn help_lists_the_exit_codes() {
        let help = Cli::command().render_long_help().to_string();
        assert!(help.contains("Exit status:"));
        assert!(help.contains("cancelled"));
    }

    #[test]
    fn exit_codes_are_the_documented_ones() {
        assert_eq!(Exit::Refused as u8, 1);
        assert_eq!(Exit::Cancelled as u8, 3);
        assert_eq!(Exit::CancelFailed as u8, 4);
    }
}
