// SPDX-License-Identifier: GPL-2.0

//! Host tests of `file_deps.rs` (a child module of it); compiled only
//! with `cfg(test)`.

use super::*;

/// Orders files whose dependencies are `deps`.
fn ordered(deps: &[&[usize]]) -> Result<Vec<usize>, OrderError> {
    let n = deps.len();
    let mut out = vec![usize::MAX; n];
    let mut visits = vec![Visit::Placed; n];
    let mut stack = vec![(7, 7); n];
    order(|i| deps[i], &mut out, &mut visits, &mut stack).map(|()| out)
}

#[test]
fn files_without_dependencies_keep_their_order() {
    assert_eq!(ordered(&[&[], &[], &[]]), Ok(vec![0, 1, 2]));
    assert_eq!(ordered(&[]), Ok(vec![]));
}

#[test]
fn dependencies_come_first() {
    // A chain preserved back to front.
    assert_eq!(ordered(&[&[1], &[2], &[]]), Ok(vec![2, 1, 0]));
    // Only what must move moves.
    assert_eq!(ordered(&[&[], &[2], &[], &[]]), Ok(vec![0, 2, 1, 3]));
    // Shared dependencies are placed once.
    assert_eq!(ordered(&[&[3, 2], &[3], &[3], &[]]), Ok(vec![3, 2, 0, 1]));
    // The same dependency twice.
    assert_eq!(ordered(&[&[1, 1], &[]]), Ok(vec![1, 0]));
}

#[test]
fn cycles_and_bad_indices_are_refused() {
    assert_eq!(ordered(&[&[0]]), Err(OrderError::Cycle(0)));
    assert_eq!(ordered(&[&[1], &[0]]), Err(OrderError::Cycle(0)));
    assert_eq!(ordered(&[&[], &[2], &[3], &[1]]), Err(OrderError::Cycle(1)));
    assert_eq!(ordered(&[&[5], &[]]), Err(OrderError::Bad));
    let mut out = [0; 2];
    let mut visits = [Visit::New; 1];
    let mut stack = [(0, 0); 2];
    let none: &[usize] = &[];
    assert_eq!(
        order(|_| none, &mut out, &mut visits, &mut stack),
        Err(OrderError::Bad)
    );
}

/// A small deterministic generator for the property tests.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

#[test]
fn any_acyclic_graph_is_ordered() {
    let mut rng = Lcg(1);
    for round in 0..500 {
        let n = 1 + rng.below(40);
        // Acyclic by construction over a hidden ranking, then shuffled.
        let mut rank: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            rank.swap(i, rng.below(i + 1));
        }
        let deps: Vec<Vec<usize>> = (0..n)
            .map(|i| {
                (0..rng.below(4))
                    .map(|_| rng.below(n))
                    .filter(|&j| rank[j] < rank[i])
                    .collect()
            })
            .collect();
        let refs: Vec<&[usize]> = deps.iter().map(|d| d.as_slice()).collect();
        let out = ordered(&refs).unwrap_or_else(|e| panic!("round {round}: {e:?}"));
        let mut at = vec![usize::MAX; n];
        for (k, &i) in out.iter().enumerate() {
            assert_eq!(at[i], usize::MAX, "round {round}: {i} twice");
            at[i] = k;
        }
        for (i, d) in deps.iter().enumerate() {
            for &j in d {
                assert!(
                    at[j] < at[i],
                    "round {round}: {i} before its dependency {j}"
                );
            }
        }
        // And the files move as ordered.
        let mut items: Vec<usize> = (0..n).map(|i| i * 10).collect();
        let mut o = out.clone();
        permute(&mut items, &mut o).unwrap();
        assert_eq!(items, out.iter().map(|i| i * 10).collect::<Vec<_>>());
    }
}

#[test]
fn permute_refuses_what_is_no_permutation() {
    let mut items = [1, 2, 3];
    assert_eq!(permute(&mut items, &mut [1, 0, 0]), Err(OrderError::Bad));
    assert_eq!(permute(&mut items, &mut [0, 1, 9]), Err(OrderError::Bad));
    assert_eq!(permute(&mut items, &mut [0, 1]), Err(OrderError::Bad));
    let mut items = ['a', 'b', 'c', 'd'];
    permute(&mut items, &mut [3, 0, 2, 1]).unwrap();
    assert_eq!(items, ['d', 'a', 'c', 'b']);
}
