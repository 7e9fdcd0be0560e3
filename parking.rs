// SPDX-License-Identifier: GPL-2.0

//! Where a handler keeps what a failed RETRIEVE_FD built or took out of
//! the handover, for the next attempt (or for FINISH to free).
//!
//! A handler declares a [`Lot`]: a type that reaches its own lock-protected
//! [`Parking`]. An attempt reserves a [`ParkRoom`] before it consumes
//! anything, so that what it holds when it fails can always be parked: a
//! failed allocation then never loses a file. Items are keyed by the
//! file's [`crate::luo_file::HandedOver::key`], which no other file has.

use core::marker::PhantomData;
use kernel::prelude::*;

/// The items of one handler's lot, by file key.
pub(crate) struct Parking<T> {
    items: KVec<(u64, T)>,
    /// Room in `items` promised to attempts in progress ([`ParkRoom`]).
    reserved: usize,
}

impl<T> Parking<T> {
    /// An empty lot.
    pub(crate) const fn new() -> Self {
        Self {
            items: KVec::new(),
            reserved: 0,
        }
    }
}

/// A handler's lot: its [`Parking`], behind the handler's own lock.
pub(crate) trait Lot: 'static {
    /// What is parked.
    type Item;
    /// Runs `f` on the parking, with its lock held.
    fn with<R>(f: impl FnOnce(&mut Parking<Self::Item>) -> R) -> R;
}

/// Room for one item in `L`'s lot, reserved before an attempt starts.
///
/// # Invariants
///
/// Counted in the lot's `reserved` while this lives, and its `items` has
/// room for every such reservation.
pub(crate) struct ParkRoom<L: Lot>(PhantomData<L>);

impl<L: Lot> ParkRoom<L> {
    /// Reserves room for one item: `ENOMEM` if there is none.
    pub(crate) fn new() -> Result<Self> {
        L::with(|parking| {
            let room = parking.reserved + 1;
            parking.items.reserve(room, GFP_KERNEL)?;
            parking.reserved = room;
            // INVARIANT: counted, and room made for it.
            Ok(ParkRoom(PhantomData))
        })
    }

    /// Parks `item` under `key` in the room reserved.
    pub(crate) fn park(self, key: u64, item: L::Item) {
        if L::with(|parking| parking.items.push_within_capacity((key, item))).is_err() {
            // Cannot happen: the room was reserved.
            pr_err!("no room left to park a file being retrieved: freeing it\n");
        }
        // Then `self` goes, and its reservation with it.
    }
}

impl<L: Lot> Drop for ParkRoom<L> {
    fn drop(&mut self) {
        L::with(|parking| parking.reserved -= 1);
    }
}

/// What a failed attempt parked under `key` in `L`'s lot, if anything.
pub(crate) fn unpark<L: Lot>(key: u64) -> Option<L::Item> {
    L::with(|parking| {
        let i = parking.items.iter().position(|(k, _)| *k == key)?;
        parking.items.remove(i).ok().map(|(_, item)| item)
    })
}
