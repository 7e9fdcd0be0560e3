// SPDX-License-Identifier: GPL-2.0

//! The order a session's files are handed over in: every file after the
//! files it depends on.
//!
//! A handler may need other files of its session in the new kernel (a
//! guest_memfd its VM, an iommufd the memfds it maps). PREPARE and FREEZE
//! put the session's files in an order where each comes after those it
//! depends on ([`order`]), so that the new kernel can rebuild a session
//! front to back and finish it back to front, and the handover cannot
//! even express a cycle. Files no dependency ties keep the order they
//! were preserved in.
//!
//! Pure `core` code, without allocation (the caller gives the room): the
//! kernel and host tests compile this same file.

/// Why files cannot be ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrderError {
    /// The files depend on each other in a cycle; this one is in it.
    Cycle(usize),
    /// A dependency names no file, or the room given is too small.
    Bad,
}

/// Where [`order`] keeps track of the files it visits; one per file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Visit {
    /// Not reached yet.
    #[default]
    New,
    /// Its dependencies are being placed.
    Open,
    /// Placed.
    Placed,
}

/// Fills `out` with files `0..out.len()` in an order where each comes
/// after every file in `depends(i)` (its dependencies, as indices),
/// otherwise in index order. `visits` and `stack` are room of
/// `out.len()` entries each (their contents do not matter).
///
/// A depth-first walk, each file placed once its dependencies are: time
/// in proportion to files and dependencies, no recursion.
pub(crate) fn order<'a>(
    depends: impl Fn(usize) -> &'a [usize],
    out: &mut [usize],
    visits: &mut [Visit],
    stack: &mut [(usize, usize)],
) -> Result<(), OrderError> {
    let n = out.len();
    if visits.len() != n || stack.len() != n {
        return Err(OrderError::Bad);
    }
    visits.fill(Visit::New);
    let mut placed = 0;
    for root in 0..n {
        if visits[root] != Visit::New {
            continue;
        }
        visits[root] = Visit::Open;
        stack[0] = (root, 0);
        let mut depth: usize = 1;
        while let Some(top) = depth.checked_sub(1) {
            let (file, next) = stack[top];
            match depends(file).get(next) {
                Some(&dep) => {
                    stack[top].1 = next + 1;
                    match visits.get(dep) {
                        None => return Err(OrderError::Bad),
                        Some(Visit::Open) => return Err(OrderError::Cycle(dep)),
                        Some(Visit::Placed) => {}
                        Some(Visit::New) => {
                            // At most n files are open at once: `depth < n`.
                            visits[dep] = Visit::Open;
                            *stack.get_mut(depth).ok_or(OrderError::Bad)? = (dep, 0);
                            depth += 1;
                        }
                    }
                }
                None => {
                    visits[file] = Visit::Placed;
                    *out.get_mut(placed).ok_or(OrderError::Bad)? = file;
                    placed += 1;
                    depth = top;
                }
            }
        }
    }
    Ok(())
}

/// Rearranges `items` in place so that the item at `k` is the one that
/// was at `order[k]`; `order` must be a permutation of `0..items.len()`
/// (`OrderError::Bad` otherwise, `items` then in some order). `order` is
/// used up.
pub(crate) fn permute<T>(items: &mut [T], order: &mut [usize]) -> Result<(), OrderError> {
    if order.len() != items.len() {
        return Err(OrderError::Bad);
    }
    for start in 0..order.len() {
        // Follow the cycle through `start`, swapping each item into its
        // place; a place done is marked by `order[k] == k`.
        let mut k = start;
        loop {
            let from = order[k];
            order[k] = k;
            if from == start || from == k {
                break;
            }
            if from >= items.len() || order[from] == from {
                // Not a permutation: an index twice, or out of range.
                return Err(OrderError::Bad);
            }
            items.swap(k, from);
            k = from;
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "tests/file_deps.rs"]
mod tests;
