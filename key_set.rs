// SPDX-License-Identifier: GPL-2.0

//! Sets of keys and tallies per key with lookups in O(log n), for the
//! registries that must stay fast with a hundred thousand entries (the
//! preserved files, the preserved memfds' inodes, what each user has).
//!
//! Rbtrees, made on first use: a static's initial value must be a
//! constant and the kernel's `RBTree::new` is not one. Adding never fails,
//! as the node is allocated beforehand ([`KeySet::node`], [`Tally::room`]):
//! a caller allocates, then does what can fail, then adds. Nodes are
//! charged to the caller's memory cgroup: each is for something it added.

use kernel::{
    prelude::*,
    rbtree::{RBTree, RBTreeNode, RBTreeNodeReservation},
};

/// A set of keys.
pub(crate) struct KeySet<K> {
    tree: Option<RBTree<K, ()>>,
}

/// Room for one key, allocated before it is added.
pub(crate) struct KeyNode<K>(RBTreeNode<K, ()>);

impl<K: Ord> KeySet<K> {
    /// An empty set.
    pub(crate) const fn new() -> Self {
        Self { tree: None }
    }

    /// Allocates the node that will hold `key`.
    pub(crate) fn node(key: K) -> Result<KeyNode<K>> {
        Ok(KeyNode(RBTreeNode::new(key, (), GFP_KERNEL_ACCOUNT)?))
    }

    /// Whether `key` is in the set.
    pub(crate) fn contains(&self, key: &K) -> bool {
        self.tree.as_ref().is_some_and(|t| t.get(key).is_some())
    }

    /// Adds the key of `node` (a key already there stays, once).
    pub(crate) fn insert(&mut self, node: KeyNode<K>) {
        self.tree.get_or_insert_with(RBTree::new).insert(node.0);
    }

    /// Removes `key`, if it is there.
    pub(crate) fn remove(&mut self, key: &K) {
        if let Some(tree) = &mut self.tree {
            tree.remove(key);
        }
    }
}

/// How many of something each key has (a user's sessions, say); a key
/// with none has no entry. Made on first use, like [`KeySet`].
pub(crate) struct Tally<K> {
    tree: Option<RBTree<K, usize>>,
}

/// Room for a key's entry in a [`Tally`], allocated beforehand.
pub(crate) struct TallyRoom<K>(RBTreeNodeReservation<K, usize>);

impl<K: Ord> Tally<K> {
    /// No key has any.
    pub(crate) const fn new() -> Self {
        Self { tree: None }
    }

    /// Allocates room for one more key's entry.
    pub(crate) fn room() -> Result<TallyRoom<K>> {
        Ok(TallyRoom(RBTreeNodeReservation::new(GFP_KERNEL_ACCOUNT)?))
    }

    /// How many `key` has.
    pub(crate) fn get(&self, key: &K) -> usize {
        self.tree
            .as_ref()
            .and_then(|t| t.get(key))
            .copied()
            .unwrap_or(0)
    }

    /// One more for `key`, in `room` if it had none.
    pub(crate) fn add(&mut self, key: K, room: TallyRoom<K>) {
        let tree = self.tree.get_or_insert_with(RBTree::new);
        match tree.get_mut(&key) {
            Some(n) => *n = n.saturating_add(1),
            None => drop(tree.insert(room.0.into_node(key, 1))),
        }
    }

    /// One less for `key`.
    pub(crate) fn sub(&mut self, key: &K) {
        let Some(tree) = &mut self.tree else {
            return;
        };
        let left = tree.get_mut(key).map(|n| {
            *n = n.saturating_sub(1);
            *n
        });
        if left == Some(0) {
            tree.remove(key);
        }
    }
}
