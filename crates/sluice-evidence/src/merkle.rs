//! The RFC 9162 Merkle tree: leaf and node hashes, [`MerkleLog`] (the append-only tree state kept
//! as its right-edge frontier), [`LeafSource`] (where proofs read leaf hashes) and [`MerkleError`].

use sha2::{Digest, Sha256};

/// A SHA-256 hash: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ record)`: the leaf hash of one record's canonical bytes (RFC 9162 section 2.1.1).
pub fn leaf_hash(record: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x00]);
    hasher.update(record);
    hasher.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node (RFC 9162 section 2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0x01]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Why a tree could not be restored, a proof could not be made, or a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A leaf index at or past the tree size.
    #[error("leaf index {index} is out of range for a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A proof was asked for a tree larger than the leaves the source holds.
    #[error("tree size {size} is beyond the {available} leaves available")]
    SizeBeyondLeaves { size: u64, available: u64 },
    /// A consistency proof between an older size larger than the newer one.
    #[error("consistency needs the older size {old} to be at most the newer size {new}")]
    SizesOutOfOrder { old: u64, new: u64 },
    /// A proof with the wrong number of hashes for its index and sizes.
    #[error("{kind} proof has {got} hashes; for these sizes it must have {want}")]
    BadProofLength { kind: &'static str, got: usize, want: usize },
    /// A proof whose recomputed root differs from the root it was checked against.
    #[error("{what} does not match: the proof gives {computed}, expected {expected}")]
    Mismatch { what: &'static str, computed: String, expected: String },
    /// A complete subtree appended where the tree's size is not a multiple of its width.
    #[error(
        "a subtree of 2^{height} leaves cannot be appended at tree size {size}: the size must be a multiple of its width"
    )]
    Unaligned { size: u64, height: u32 },
    /// A frontier that cannot be the state of a tree of that size.
    #[error("a frontier of {got} hashes does not fit tree size {size} (it needs {want}, one per set bit of the size)")]
    BadFrontier { size: u64, got: usize, want: usize },
}

impl MerkleError {
    pub(crate) fn mismatch(what: &'static str, computed: &Hash, expected: &Hash) -> Self {
        MerkleError::Mismatch { what, computed: hex::encode(computed), expected: hex::encode(expected) }
    }
}

/// The state of an append-only RFC 9162 tree, without its leaves.
///
/// It holds the roots of the complete (power-of-two) subtrees along the tree's right edge, largest
/// (leftmost) first: one per set bit of `size`, so at most 64 hashes. Appending merges equal-sized
/// subtrees like a binary counter: amortised O(1) hashes, at worst O(log n). [`MerkleLog::root`]
/// folds the frontier right to left, O(log n).
///
/// [`MerkleLog::frontier`] and [`MerkleLog::from_frontier`] save and restore it, so a restart does not
/// rehash every leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MerkleLog {
    size: u64,
    frontier: Vec<Hash>,
}

impl MerkleLog {
    /// The empty tree.
    pub fn new() -> Self {
        MerkleLog::default()
    }

    /// Restores a tree from its size and [`MerkleLog::frontier`]. The number of hashes must equal the
    /// number of set bits of `size`; their values cannot be checked without the leaves.
    pub fn from_frontier(size: u64, frontier: Vec<Hash>) -> Result<Self, MerkleError> {
        let want = size.count_ones() as usize;
        if frontier.len() != want {
            return Err(MerkleError::BadFrontier { size, got: frontier.len(), want });
        }
        Ok(MerkleLog { size, frontier })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The roots of the complete subtrees on the right edge, largest first.
    pub fn frontier(&self) -> Vec<Hash> {
        self.frontier.clone()
    }

    /// Appends a leaf hash (see [`leaf_hash`]) and returns its index.
    pub fn append(&mut self, leaf: Hash) -> u64 {
        let index = self.size;
        self.push_subtree(leaf, 0);
        index
    }

    /// Appends a complete subtree of `2^height` leaves by its root, as if its leaves were appended
    /// one by one. The size must be a multiple of `2^height` (the subtree sits at an aligned
    /// position, as every complete subtree of an RFC 9162 tree does); otherwise nothing changes and
    /// the error says so.
    pub fn append_subtree(&mut self, root: Hash, height: u32) -> Result<(), MerkleError> {
        let width =
            1u64.checked_shl(height).filter(|w| *w != 0).ok_or(MerkleError::Unaligned { size: self.size, height })?;
        if !self.size.is_multiple_of(width) || self.size.checked_add(width).is_none() {
            return Err(MerkleError::Unaligned { size: self.size, height });
        }
        self.push_subtree(root, height);
        Ok(())
    }

    /// Adds a complete subtree of `2^height` leaves at an aligned size.
    fn push_subtree(&mut self, root: Hash, height: u32) {
        let mut hash = root;
        let mut carry = self.size >> height;
        while carry & 1 == 1 {
            // A set low bit means the last frontier entry is a complete subtree of the same size as
            // `hash`: merge them, as a binary counter carries.
            let left = self.frontier.pop().expect("one frontier entry per set bit of the size");
            hash = node_hash(&left, &hash);
            carry >>= 1;
        }
        self.frontier.push(hash);
        self.size += 1 << height;
    }

    /// Appends a record by its canonical bytes (hashed with [`leaf_hash`]) and returns its index.
    pub fn append_record(&mut self, record: &[u8]) -> u64 {
        self.append(leaf_hash(record))
    }

    /// The Merkle Tree Hash (RFC 9162 section 2.1.1) of all leaves; [`empty_root`] for no leaves.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.frontier.iter().rev();
        let Some(last) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(*last, |right, left| node_hash(left, &right))
    }
}

/// Where proof generation reads leaf hashes: a slice in tests, the audit store later.
pub trait LeafSource {
    /// How many leaves the source holds; proofs can be made for trees up to this size.
    fn leaf_count(&self) -> u64;

    /// The leaf hash at `index` (below [`LeafSource::leaf_count`]).
    fn leaf(&self, index: u64) -> Hash;

    /// The Merkle Tree Hash of the leaves `start..end` (`start < end <= leaf_count`).
    ///
    /// The default rehashes every leaf in the range, O(end - start); a store that keeps interior
    /// nodes can answer from them instead.
    fn subtree_root(&self, start: u64, end: u64) -> Hash {
        let mut log = MerkleLog::new();
        for index in start..end {
            log.append(self.leaf(index));
        }
        log.root()
    }
}

impl LeafSource for [Hash] {
    fn leaf_count(&self) -> u64 {
        self.len() as u64
    }

    fn leaf(&self, index: u64) -> Hash {
        self[usize::try_from(index).expect("a slice index fits usize")]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH(D[n]) exactly as RFC 9162 section 2.1.1 writes it.
    pub(crate) fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let mut k = 1;
                while k * 2 < n {
                    k *= 2;
                }
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    fn leaves(n: usize) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("record {i}").as_bytes())).collect()
    }

    #[test]
    fn leaf_and_node_hashes_use_the_domain_prefixes() {
        let expected_leaf: Hash = Sha256::digest([0x00, b'a', b'b']).into();
        assert_eq!(leaf_hash(b"ab"), expected_leaf);
        let (l, r) = ([1u8; 32], [2u8; 32]);
        let mut bytes = vec![0x01];
        bytes.extend_from_slice(&l);
        bytes.extend_from_slice(&r);
        let expected_node: Hash = Sha256::digest(&bytes).into();
        assert_eq!(node_hash(&l, &r), expected_node);
        assert_ne!(node_hash(&l, &r), node_hash(&r, &l));
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(MerkleLog::new().root(), empty_root());
        assert_eq!(MerkleLog::new().size(), 0);
    }

    #[test]
    fn appending_complete_subtrees_equals_appending_their_leaves() {
        let all = leaves(75);
        // 64 leaves as one subtree, then 8 as one, then 3 one by one: the tree of all 75.
        let mut log = MerkleLog::new();
        log.append_subtree(naive_root(&all[..64]), 6).expect("aligned at 0");
        log.append_subtree(naive_root(&all[64..72]), 3).expect("aligned at 64");
        for leaf in &all[72..] {
            log.append(*leaf);
        }
        assert_eq!(log.size(), 75);
        assert_eq!(log.root(), naive_root(&all));
        // Blocks of 4 give every intermediate root a leaf-by-leaf tree gives at multiples of 4.
        let mut blocks = MerkleLog::new();
        for (i, block) in all[..72].chunks(4).enumerate() {
            blocks.append_subtree(naive_root(block), 2).expect("aligned");
            assert_eq!(blocks.root(), naive_root(&all[..4 * (i + 1)]));
        }
    }

    #[test]
    fn an_unaligned_subtree_is_refused_and_changes_nothing() {
        let mut log = MerkleLog::new();
        log.append(leaf_hash(b"one"));
        let before = log.clone();
        assert_eq!(log.append_subtree([7; 32], 1), Err(MerkleError::Unaligned { size: 1, height: 1 }));
        assert_eq!(log.append_subtree([7; 32], 64), Err(MerkleError::Unaligned { size: 1, height: 64 }));
        assert_eq!(log, before);
    }

    #[test]
    fn root_after_each_append_matches_the_naive_mth_up_to_200() {
        let all = leaves(200);
        let mut log = MerkleLog::new();
        assert_eq!(log.root(), naive_root(&[]));
        for (i, leaf) in all.iter().enumerate() {
            assert_eq!(log.append(*leaf), i as u64);
            assert_eq!(log.size(), i as u64 + 1);
            assert_eq!(log.root(), naive_root(&all[..=i]), "size {}", i + 1);
            assert_eq!(log.frontier().len(), log.size().count_ones() as usize);
        }
    }

    #[test]
    fn known_rfc_6962_test_vector_roots() {
        // The eight leaves of the Certificate Transparency reference tests (RFC 6962 and 9162 share the
        // tree hash), with the published roots for sizes 1 and 8.
        let inputs: [&[u8]; 8] = [
            b"",
            &[0x00],
            &[0x10],
            &[0x20, 0x21],
            &[0x30, 0x31],
            &[0x40, 0x41, 0x42, 0x43],
            &[0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            &[0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
        ];
        let mut log = MerkleLog::new();
        let mut roots = Vec::new();
        for input in inputs {
            log.append_record(input);
            roots.push(hex::encode(log.root()));
        }
        assert_eq!(roots[0], "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        assert_eq!(roots[7], "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328");
    }

    #[test]
    fn frontier_round_trips_and_appending_continues() {
        let all = leaves(77);
        let mut log = MerkleLog::new();
        for leaf in &all[..50] {
            log.append(*leaf);
        }
        let mut restored = MerkleLog::from_frontier(log.size(), log.frontier()).unwrap();
        assert_eq!(restored, log);
        for leaf in &all[50..] {
            restored.append(*leaf);
        }
        assert_eq!(restored.root(), naive_root(&all));
        assert_eq!(MerkleLog::from_frontier(0, Vec::new()).unwrap().root(), empty_root());
    }

    #[test]
    fn from_frontier_rejects_a_wrong_number_of_hashes() {
        let err = MerkleLog::from_frontier(5, vec![[0; 32]]).unwrap_err();
        assert_eq!(err, MerkleError::BadFrontier { size: 5, got: 1, want: 2 });
        assert!(err.to_string().contains("tree size 5"), "{err}");
        assert!(MerkleLog::from_frontier(0, vec![[0; 32]]).is_err());
    }

    #[test]
    fn slice_leaf_source_reads_leaves_and_subtree_roots() {
        let all = leaves(13);
        let source: &[Hash] = &all;
        assert_eq!(source.leaf_count(), 13);
        assert_eq!(source.leaf(4), all[4]);
        assert_eq!(source.subtree_root(0, 13), naive_root(&all));
        assert_eq!(source.subtree_root(8, 13), naive_root(&all[8..]));
        assert_eq!(source.subtree_root(3, 4), all[3]);
    }
}
