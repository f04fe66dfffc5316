//! The log's Merkle tree as the store keeps it: leaves grouped in blocks.
//!
//! Owns: [`LogTree`], the writer's O(log n) tree state (restored from stored
//! block roots plus the records after them), and [`StoreLeaves`], the
//! [`LeafSource`] that inclusion and consistency proofs read.
//! Does not: define the tree hashes (sluice-evidence does) or run SQL.
//!
//! # Blocks
//! Leaf `i` is `SHA-256(0x00 ‖ body of record i + 1)`. Every complete run of
//! [`BLOCK_LEAVES`] leaves starting at a multiple of it is a complete subtree
//! of the RFC 9162 tree; its root is stored in `audit_blocks` in the same
//! transaction as the record that completes it. A restart then rebuilds the
//! tree from about n/256 block roots and fewer than 256 bodies, and a proof
//! reads the block roots and the bodies of at most a few blocks.
//! Block roots are a cache: verify recomputes everything from the bodies.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};

use sluice_evidence::{Hash, LeafSource, MerkleLog, leaf_hash};

use crate::AuditError;

/// log2 of [`BLOCK_LEAVES`].
pub(crate) const BLOCK_HEIGHT: u32 = 8;
/// Leaves per stored block root.
pub(crate) const BLOCK_LEAVES: u64 = 1 << BLOCK_HEIGHT;

/// The tree over every record written so far.
#[derive(Debug, Clone, Default)]
pub(crate) struct LogTree {
    tree: MerkleLog,
    /// The leaves of the block being filled (fewer than [`BLOCK_LEAVES`]).
    block: MerkleLog,
}

impl LogTree {
    /// Rebuilds the tree from the stored block roots (blocks `0..n`, in
    /// order) and the `(seq, body)` of every record after them (`redacted`:
    /// the original leaves of bodies retention rewrote). Also returns the
    /// roots of blocks those bodies complete, for the caller to store (a log
    /// written before blocks were kept, or a lost block row).
    pub(crate) fn restore(
        blocks: &[Hash],
        later: &[(i64, String)],
        redacted: &HashMap<u64, Hash>,
    ) -> Result<(LogTree, Vec<(u64, Hash)>), AuditError> {
        let mut tree = LogTree::default();
        for root in blocks {
            tree.tree
                .append_subtree(*root, BLOCK_HEIGHT)
                .map_err(|e| AuditError::Corrupt(format!("stored block roots: {e}")))?;
        }
        let mut completed = Vec::new();
        for (seq, body) in later {
            let expected = tree.size() + 1;
            if u64::try_from(*seq).ok() != Some(expected) {
                return Err(AuditError::Corrupt(format!(
                    "record {expected} is missing (the next stored record is {seq}); run `sluice audit verify`"
                )));
            }
            let leaf = redacted.get(&expected).copied().unwrap_or_else(|| leaf_hash(body.as_bytes()));
            completed.extend(tree.append_leaf(leaf));
        }
        Ok((tree, completed))
    }

    /// Adds the record `body` as the next leaf. Returns `(block, root)` when
    /// this leaf completes a block.
    pub(crate) fn append(&mut self, body: &str) -> Option<(u64, Hash)> {
        self.append_leaf(leaf_hash(body.as_bytes()))
    }

    fn append_leaf(&mut self, leaf: Hash) -> Option<(u64, Hash)> {
        self.tree.append(leaf);
        self.block.append(leaf);
        if self.block.size() < BLOCK_LEAVES {
            return None;
        }
        let root = self.block.root();
        self.block = MerkleLog::new();
        Some((self.tree.size() / BLOCK_LEAVES - 1, root))
    }

    pub(crate) fn size(&self) -> u64 {
        self.tree.size()
    }

    pub(crate) fn root(&self) -> Hash {
        self.tree.root()
    }
}

/// Leaf hashes for proofs over the first `size` leaves, from block roots and
/// the leaves of the blocks a proof needs.
///
/// Used twice per proof: first with no leaves loaded, which records the
/// blocks the proof reads ([`StoreLeaves::wanted`]); then with those loaded.
/// Proof generation takes the same path whatever the hash values, so the
/// second pass needs exactly those blocks.
#[derive(Debug)]
pub(crate) struct StoreLeaves {
    size: u64,
    /// Roots of the complete blocks below `size`.
    blocks: Vec<Hash>,
    /// Leaf hashes of loaded blocks, by block number.
    leaves: BTreeMap<u64, Vec<Hash>>,
    wanted: RefCell<BTreeSet<u64>>,
}

impl StoreLeaves {
    pub(crate) fn new(size: u64, blocks: Vec<Hash>) -> Self {
        StoreLeaves { size, blocks, leaves: BTreeMap::new(), wanted: RefCell::new(BTreeSet::new()) }
    }

    /// Blocks whose leaves were asked for but are not loaded.
    pub(crate) fn wanted(&self) -> BTreeSet<u64> {
        self.wanted.borrow().clone()
    }

    /// Loads the leaves of `block` from its records' bodies, in seq order
    /// (`redacted`: the original leaves of bodies retention rewrote).
    pub(crate) fn load(&mut self, block: u64, bodies: &[(i64, String)], redacted: &HashMap<u64, Hash>) {
        let leaf = |(seq, body): &(i64, String)| match redacted.get(&(*seq as u64)) {
            Some(leaf) => *leaf,
            None => leaf_hash(body.as_bytes()),
        };
        self.leaves.insert(block, bodies.iter().map(leaf).collect());
        self.wanted.borrow_mut().remove(&block);
    }
}

impl LeafSource for StoreLeaves {
    fn leaf_count(&self) -> u64 {
        self.size
    }

    fn leaf(&self, index: u64) -> Hash {
        let block = index / BLOCK_LEAVES;
        match self.leaves.get(&block).and_then(|leaves| leaves.get((index % BLOCK_LEAVES) as usize)) {
            Some(leaf) => *leaf,
            None => {
                self.wanted.borrow_mut().insert(block);
                [0; 32]
            }
        }
    }

    fn subtree_root(&self, start: u64, end: u64) -> Hash {
        let mut log = MerkleLog::new();
        let mut index = start;
        while index < end {
            let block = index / BLOCK_LEAVES;
            let whole = index.is_multiple_of(BLOCK_LEAVES)
                && (index - start).is_multiple_of(BLOCK_LEAVES)
                && index + BLOCK_LEAVES <= end;
            match self.blocks.get(block as usize).filter(|_| whole) {
                Some(root) => {
                    // Aligned by the two checks above, so this cannot fail.
                    let _ = log.append_subtree(*root, BLOCK_HEIGHT);
                    index += BLOCK_LEAVES;
                }
                None => {
                    log.append(self.leaf(index));
                    index += 1;
                }
            }
        }
        log.root()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_evidence::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};

    fn bodies(n: u64) -> Vec<(i64, String)> {
        (1..=n).map(|seq| (seq as i64, format!("{{\"seq\":{seq}}}"))).collect()
    }

    fn leaves_of(bodies: &[(i64, String)]) -> Vec<Hash> {
        bodies.iter().map(|(_, b)| leaf_hash(b.as_bytes())).collect()
    }

    #[test]
    fn restore_from_blocks_and_tail_equals_appending_everything() {
        let all = bodies(700);
        let mut direct = LogTree::default();
        let mut blocks = Vec::new();
        for (_, body) in &all {
            blocks.extend(direct.append(body).map(|(_, root)| root));
        }
        assert_eq!(blocks.len(), 2);
        let (restored, completed) = LogTree::restore(&blocks, &all[512..], &HashMap::new()).expect("restores");
        assert!(completed.is_empty());
        assert_eq!((restored.size(), restored.root()), (700, direct.root()));
        // Without block rows, the bodies complete both blocks again.
        let (rebuilt, completed) = LogTree::restore(&[], &all, &HashMap::new()).expect("restores");
        assert_eq!(rebuilt.root(), direct.root());
        assert_eq!(completed.iter().map(|(b, r)| (*b, *r)).collect::<Vec<_>>(), vec![(0, blocks[0]), (1, blocks[1])]);
        // A gap in the bodies is refused.
        let mut gapped = all[512..].to_vec();
        gapped.remove(3);
        assert!(LogTree::restore(&blocks, &gapped, &HashMap::new()).is_err());
    }

    #[test]
    fn proofs_from_blocks_match_proofs_from_all_leaves_and_verify() {
        let all = bodies(1000);
        let leaves = leaves_of(&all);
        let mut tree = LogTree::default();
        let mut blocks = Vec::new();
        for (_, body) in &all {
            blocks.extend(tree.append(body).map(|(_, root)| root));
        }
        for (index, size) in [(0u64, 1u64), (5, 256), (255, 257), (300, 1000), (999, 1000), (700, 769)] {
            let mut source = StoreLeaves::new(size, blocks[..(size / BLOCK_LEAVES) as usize].to_vec());
            let _ = inclusion_proof(&source, index, size).expect("first pass");
            let wanted = source.wanted();
            assert!(wanted.len() <= 2, "{wanted:?}");
            for block in wanted {
                let first = (block * BLOCK_LEAVES) as usize;
                let last = ((block + 1) * BLOCK_LEAVES).min(size) as usize;
                source.load(block, &all[first..last], &HashMap::new());
            }
            let proof = inclusion_proof(&source, index, size).expect("second pass");
            assert!(source.wanted().is_empty());
            assert_eq!(proof, inclusion_proof(&leaves[..size as usize], index, size).expect("reference"));
            let mut reference = MerkleLog::new();
            leaves[..size as usize].iter().for_each(|l| {
                reference.append(*l);
            });
            verify_inclusion(&leaves[index as usize], index, size, &proof, &reference.root()).expect("verifies");
        }
        for (m, n) in [(1u64, 1000u64), (256, 512), (300, 1000), (511, 513), (999, 1000)] {
            let mut source = StoreLeaves::new(n, blocks[..(n / BLOCK_LEAVES) as usize].to_vec());
            let _ = consistency_proof(&source, m, n).expect("first pass");
            for block in source.wanted() {
                let first = (block * BLOCK_LEAVES) as usize;
                let last = ((block + 1) * BLOCK_LEAVES).min(n) as usize;
                source.load(block, &all[first..last], &HashMap::new());
            }
            let proof = consistency_proof(&source, m, n).expect("second pass");
            assert_eq!(proof, consistency_proof(&leaves[..n as usize], m, n).expect("reference"));
            let root_of = |k: u64| {
                let mut log = MerkleLog::new();
                leaves[..k as usize].iter().for_each(|l| {
                    log.append(*l);
                });
                log.root()
            };
            verify_consistency(m, n, &root_of(m), &root_of(n), &proof).expect("verifies");
        }
    }
}
