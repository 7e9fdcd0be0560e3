// SPDX-License-Identifier: GPL-2.0

//! Host tests of `luo_state.rs` (a child module of it, so private items
//! are in reach); compiled only with `cfg(test)`.

use super::*;
use Event as E;
use State as S;

/// The specification, written out in full: every state x every event.
#[test]
fn every_state_times_every_event() {
    for s in STATES {
        for e in EVENTS {
            let expected = match (s, e) {
                (S::Normal, E::Prepare) => Some((Work::Prepare, S::Prepared, S::Normal)),
                (S::Prepared, E::Freeze) => Some((Work::Freeze, S::Frozen, S::Normal)),
                (S::Prepared, E::Cancel) => {
                    Some((Work::Cancel { from: S::Prepared }, S::Normal, S::Normal))
                }
                (S::Frozen, E::Cancel) => {
                    Some((Work::Cancel { from: S::Frozen }, S::Normal, S::Normal))
                }
                (S::Updated, E::Finish) => Some((Work::FinishIncoming, S::Normal, S::Normal)),
                _ => None,
            };
            let got = on_event(s, e);
            match expected {
                Some((work, to, on_failure)) => assert_eq!(
                    got,
                    Ok(Transition {
                        work,
                        to,
                        on_failure
                    }),
                    "{s:?} x {e:?}"
                ),
                None => assert_eq!(got, Err(Refusal::Busy), "{s:?} x {e:?}"),
            }
        }
    }
}

#[test]
fn every_failure_lands_in_normal() {
    // A failed step never leaves a half-prepared system behind.
    for s in STATES {
        for e in EVENTS {
            if let Ok(t) = on_event(s, e) {
                assert_eq!(t.on_failure, S::Normal, "{s:?} x {e:?}");
            }
        }
    }
}

#[test]
fn plain_kexec_runs_the_missing_steps() {
    assert_eq!(on_kexec(S::Normal), Ok(&[E::Prepare, E::Freeze][..]));
    assert_eq!(on_kexec(S::Prepared), Ok(&[E::Freeze][..]));
    assert_eq!(on_kexec(S::Frozen), Ok(&[][..]));
    assert_eq!(on_kexec(S::Updated), Err(Refusal::Busy));
    // Each step is itself a legal event from where the previous left.
    for s in STATES {
        if let Ok(steps) = on_kexec(s) {
            let mut cur = s;
            for &e in steps {
                cur = on_event(cur, e).unwrap().to;
            }
            assert_eq!(cur, S::Frozen, "from {s:?}");
        }
    }
}

#[test]
fn uapi_values() {
    assert_eq!(S::Normal as u32, 1);
    assert_eq!(S::Updated as u32, 4);
    for e in EVENTS {
        assert_eq!(Event::from_uapi(e as u32), Some(e));
    }
    assert_eq!(Event::from_uapi(0), None);
    assert_eq!(Event::from_uapi(5), None);
    assert_eq!(Event::from_uapi(u32::MAX), None);
}

/// The specification of every ioctl in every state on every kind of
/// session, written out in full.
#[test]
fn every_state_times_every_op() {
    use Op as O;
    use Origin as G;
    let origins = [None, Some(G::Outgoing), Some(G::Incoming)];
    for s in STATES {
        for op in OPS {
            for origin in origins {
                let quiet = s == S::Normal || s == S::Updated;
                let expected = match (op, origin) {
                    (O::CreateSession, _) => quiet.then_some(()).ok_or(Refusal::Busy),
                    (O::RetrieveSession, _) => (s == S::Updated).then_some(()).ok_or(Refusal::Busy),
                    (O::SetName | O::PreserveFd | O::UnpreserveFd, Some(G::Outgoing)) => {
                        quiet.then_some(()).ok_or(Refusal::Busy)
                    }
                    (O::SetName | O::PreserveFd | O::UnpreserveFd, Some(G::Incoming)) => {
                        Err(Refusal::WrongSession)
                    }
                    (O::RetrieveFd, Some(G::Incoming)) => {
                        (s == S::Updated).then_some(()).ok_or(Refusal::Busy)
                    }
                    // Idempotent: after a global FINISH there is nothing left.
                    (O::FinishSession, Some(G::Incoming)) => Ok(()),
                    (O::RetrieveFd | O::FinishSession, Some(G::Outgoing)) => {
                        Err(Refusal::WrongSession)
                    }
                    (_, None) => Err(Refusal::Busy),
                };
                assert_eq!(check_op(s, op, origin), expected, "{s:?} {op:?} {origin:?}");
            }
        }
    }
}

#[test]
fn preserving_is_refused_while_prepared_or_frozen() {
    for s in [S::Prepared, S::Frozen] {
        for op in [
            Op::PreserveFd,
            Op::UnpreserveFd,
            Op::CreateSession,
            Op::SetName,
        ] {
            assert_eq!(
                check_op(s, op, Some(Origin::Outgoing)),
                Err(Refusal::Busy),
                "{s:?} {op:?}"
            );
        }
    }
}
