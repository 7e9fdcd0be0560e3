// SPDX-License-Identifier: GPL-2.0

//! The live update state machine, as pure functions.
//!
//! ```text
//!            PREPARE           FREEZE            kexec
//!   NORMAL ----------> PREPARED -------> FROZEN -------> (next kernel)
//!     ^  ^    CANCEL      |                 |
//!     |  +----------------+-----------------+
//!     |
//!     |  FINISH, or the last incoming session finished
//!   UPDATED  <--- boot with incoming sessions
//! ```
//!
//! [`on_event`] says what a global event (SET_EVENT) does in each state,
//! [`check_op`] whether an ioctl may run in a state, and [`on_kexec`] which
//! missing steps a plain kexec runs. The core runs the callbacks these
//! decisions call for; nothing here has side effects.
//!
//! This module uses only `core`: the kernel and the host tests compile the
//! very same file.

/// Global state; the values are `enum liveupdate_state` of the uAPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// No update in progress.
    Normal = 1,
    /// PREPARE ran: the heavy work is done while workloads still run.
    Prepared = 2,
    /// FREEZE ran: the update is committed; the kexec is next.
    Frozen = 3,
    /// Booted by a live update; incoming sessions wait to be retrieved.
    Updated = 4,
}

impl State {
    /// The state with uAPI value `v`, if there is one.
    pub(crate) fn from_uapi(v: u32) -> Option<Self> {
        [
            State::Normal,
            State::Prepared,
            State::Frozen,
            State::Updated,
        ]
        .into_iter()
        .find(|s| *s as u32 == v)
    }
}

/// Every state, for exhaustive tests.
#[cfg(test)]
pub(crate) const STATES: [State; 4] = [
    State::Normal,
    State::Prepared,
    State::Frozen,
    State::Updated,
];

/// Global events (`enum liveupdate_event` of the uAPI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// Do the heavy work: pin and preserve memory, serialise state.
    Prepare = 1,
    /// Do the little that changed since PREPARE: the blackout window.
    Freeze = 2,
    /// Undo PREPARE (and FREEZE) completely.
    Cancel = 3,
    /// In the new kernel: release every incoming session not retrieved.
    Finish = 4,
}

/// Every event.
pub(crate) const EVENTS: [Event; 4] = [Event::Prepare, Event::Freeze, Event::Cancel, Event::Finish];

impl Event {
    /// The event with uAPI value `v`, if there is one.
    pub(crate) fn from_uapi(v: u32) -> Option<Self> {
        EVENTS.into_iter().find(|e| *e as u32 == v)
    }
}

/// Why an operation was refused; the core maps each to one errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Not allowed in the current state: `EBUSY`.
    Busy,
    /// Not allowed on this kind of session: `EINVAL`.
    WrongSession,
}

/// The work a transition calls for, run by the core in this order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Work {
    /// Run every prepare callback; on failure undo those that ran.
    Prepare,
    /// Run every freeze callback; on failure cancel everything.
    Freeze,
    /// Run every cancel callback for work done up to `from`.
    Cancel { from: State },
    /// Release every incoming session nobody retrieved.
    FinishIncoming,
}

/// What an accepted event does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Transition {
    /// The work to run.
    pub(crate) work: Work,
    /// The state once the work succeeded.
    pub(crate) to: State,
    /// The state if the work failed (its partial effects undone).
    pub(crate) on_failure: State,
}

/// What SET_EVENT `event` does in `state`.
pub(crate) fn on_event(state: State, event: Event) -> Result<Transition, Refusal> {
    use {Event as E, State as S};
    let t = |work, to, on_failure| {
        Ok(Transition {
            work,
            to,
            on_failure,
        })
    };
    match (state, event) {
        (S::Normal, E::Prepare) => t(Work::Prepare, S::Prepared, S::Normal),
        (S::Prepared, E::Freeze) => t(Work::Freeze, S::Frozen, S::Normal),
        (S::Prepared | S::Frozen, E::Cancel) => {
            t(Work::Cancel { from: state }, S::Normal, S::Normal)
        }
        (S::Updated, E::Finish) => t(Work::FinishIncoming, S::Normal, S::Normal),
        _ => Err(Refusal::Busy),
    }
}

/// The steps a plain kexec (no SET_EVENT before it) runs itself, in order.
/// Upstream-style clients never send events, so a kexec from NORMAL runs
/// PREPARE then FREEZE. From UPDATED it is refused: the incoming sessions
/// must be finished (or FINISH sent) before the next update.
pub(crate) fn on_kexec(state: State) -> Result<&'static [Event], Refusal> {
    match state {
        State::Normal => Ok(&[Event::Prepare, Event::Freeze]),
        State::Prepared => Ok(&[Event::Freeze]),
        State::Frozen => Ok(&[]),
        State::Updated => Err(Refusal::Busy),
    }
}

/// Where a session came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Origin {
    /// Created in this kernel, to be handed to the next one.
    Outgoing,
    /// Handed over by the previous kernel.
    Incoming,
}

/// The ioctls whose legality depends on the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    /// CREATE_SESSION (or open()): a new outgoing session.
    CreateSession,
    /// RETRIEVE_SESSION: claim an incoming session by name.
    RetrieveSession,
    /// SESSION_SET_NAME on a session.
    SetName,
    /// SESSION_PRESERVE_FD on a session.
    PreserveFd,
    /// SESSION_UNPRESERVE_FD on a session.
    UnpreserveFd,
    /// SESSION_RETRIEVE_FD on a session.
    RetrieveFd,
    /// SESSION_FINISH on a session.
    FinishSession,
}

/// Every state-dependent operation.
#[cfg(test)]
pub(crate) const OPS: [Op; 7] = [
    Op::CreateSession,
    Op::RetrieveSession,
    Op::SetName,
    Op::PreserveFd,
    Op::UnpreserveFd,
    Op::RetrieveFd,
    Op::FinishSession,
];

/// Whether `op` may run in `state` on a session of `origin` (`None` for
/// the operations on /dev/liveupdate itself).
///
/// Outgoing sessions can be changed only while nothing is being prepared
/// (NORMAL, or UPDATED for the next update); incoming ones only exist in
/// UPDATED and can only be retrieved from (in UPDATED) and finished
/// (always: after a global FINISH it has nothing left to do). GET_STATE,
/// GET_NAME and SESSION_GET_STATE are allowed everywhere and not listed.
pub(crate) fn check_op(state: State, op: Op, origin: Option<Origin>) -> Result<(), Refusal> {
    use {Op as O, Origin as G, State as S};
    let quiet = matches!(state, S::Normal | S::Updated);
    match (op, origin) {
        (O::CreateSession, _) if quiet => Ok(()),
        (O::RetrieveSession, _) if state == S::Updated => Ok(()),
        (O::SetName | O::PreserveFd | O::UnpreserveFd, Some(G::Outgoing)) if quiet => Ok(()),
        (O::SetName | O::PreserveFd | O::UnpreserveFd, Some(G::Incoming)) => {
            Err(Refusal::WrongSession)
        }
        (O::RetrieveFd, Some(G::Incoming)) if state == S::Updated => Ok(()),
        (O::FinishSession, Some(G::Incoming)) => Ok(()),
        (O::RetrieveFd | O::FinishSession, Some(G::Outgoing)) => Err(Refusal::WrongSession),
        _ => Err(Refusal::Busy),
    }
}

#[cfg(test)]
#[path = "tests/luo_state.rs"]
mod tests;
