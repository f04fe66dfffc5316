//! RFC 9162 audit paths: making inclusion and consistency proofs from a [`LeafSource`] (sections
//! 2.1.3.1 and 2.1.4.1) and verifying them against roots alone (sections 2.1.3.2 and 2.1.4.2).

use crate::merkle::{Hash, LeafSource, MerkleError, empty_root, node_hash};

/// The inclusion proof (`PATH(index, D[size])`) of leaf `index` in the tree of the first `size` leaves,
/// deepest sibling first.
///
/// Costs O(size) hashes with the default [`LeafSource::subtree_root`].
pub fn inclusion_proof<L: LeafSource + ?Sized>(leaves: &L, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
    check_available(leaves, size)?;
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::new();
    path(leaves, index, 0, size, &mut proof);
    Ok(proof)
}

/// The consistency proof (`PROOF(m, D[n])`) that the tree of the first `m` leaves is a prefix of the
/// tree of the first `n`. Empty when `m` is 0 or equals `n`.
///
/// Costs O(n) hashes with the default [`LeafSource::subtree_root`].
pub fn consistency_proof<L: LeafSource + ?Sized>(leaves: &L, m: u64, n: u64) -> Result<Vec<Hash>, MerkleError> {
    check_available(leaves, n)?;
    if m > n {
        return Err(MerkleError::SizesOutOfOrder { old: m, new: n });
    }
    let mut proof = Vec::new();
    if m > 0 && m < n {
        subproof(leaves, m, 0, n, true, &mut proof);
    }
    Ok(proof)
}

/// Checks that `leaf` (a [`crate::leaf_hash`]) is leaf `index` of the tree of `size` leaves whose
/// root is `root`, with the algorithm of RFC 9162 section 2.1.3.2.
pub fn verify_inclusion(leaf: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let want = inclusion_len(index, size);
    if proof.len() != want {
        return Err(MerkleError::BadProofLength { kind: "inclusion", got: proof.len(), want });
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(MerkleError::BadProofLength { kind: "inclusion", got: proof.len(), want });
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if r != *root {
        return Err(MerkleError::mismatch("root", &r, root));
    }
    Ok(())
}

/// Checks that the tree of `m` leaves with root `root_m` is a prefix of the tree of `n` leaves with
/// root `root_n`, with the algorithm of RFC 9162 section 2.1.4.2. When `m == n` the proof must be empty
/// and the roots equal; when `m == 0` the proof must be empty and `root_m` the [`empty_root`].
pub fn verify_consistency(m: u64, n: u64, root_m: &Hash, root_n: &Hash, proof: &[Hash]) -> Result<(), MerkleError> {
    if m > n {
        return Err(MerkleError::SizesOutOfOrder { old: m, new: n });
    }
    if m == 0 || m == n {
        if !proof.is_empty() {
            return Err(MerkleError::BadProofLength { kind: "consistency", got: proof.len(), want: 0 });
        }
        return if m == 0 && *root_m != empty_root() {
            Err(MerkleError::mismatch("root of the empty tree", root_m, &empty_root()))
        } else if m == n && root_m != root_n {
            Err(MerkleError::mismatch("root of the newer tree", root_m, root_n))
        } else {
            Ok(())
        };
    }
    let want = consistency_len(m, n);
    if proof.len() != want {
        return Err(MerkleError::BadProofLength { kind: "consistency", got: proof.len(), want });
    }
    // Step 2: when the older tree is a complete subtree, its root is the proof's implicit first hash.
    let mut path = Vec::with_capacity(proof.len() + 1);
    if m.is_power_of_two() {
        path.push(*root_m);
    }
    path.extend_from_slice(proof);

    let (mut f, mut s) = (m - 1, n - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(MerkleError::BadProofLength { kind: "consistency", got: proof.len(), want });
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(MerkleError::BadProofLength { kind: "consistency", got: proof.len(), want });
    }
    if fr != *root_m {
        return Err(MerkleError::mismatch("root of the older tree", &fr, root_m));
    }
    if sr != *root_n {
        return Err(MerkleError::mismatch("root of the newer tree", &sr, root_n));
    }
    Ok(())
}

fn check_available<L: LeafSource + ?Sized>(leaves: &L, size: u64) -> Result<(), MerkleError> {
    let available = leaves.leaf_count();
    if size > available {
        return Err(MerkleError::SizeBeyondLeaves { size, available });
    }
    Ok(())
}

/// The largest power of two strictly below `n` (for `n >= 2`): where RFC 9162 splits a tree.
fn split(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// `PATH(m, D[start..end])`, with `m` relative to `start`.
fn path<L: LeafSource + ?Sized>(leaves: &L, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
    let n = end - start;
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(leaves, m, start, start + k, out);
        out.push(leaves.subtree_root(start + k, end));
    } else {
        path(leaves, m - k, start + k, end, out);
        out.push(leaves.subtree_root(start, start + k));
    }
}

/// `SUBPROOF(m, D[start..end], complete)`, with `m` relative to `start`.
fn subproof<L: LeafSource + ?Sized>(leaves: &L, m: u64, start: u64, end: u64, complete: bool, out: &mut Vec<Hash>) {
    let n = end - start;
    if m == n {
        if !complete {
            out.push(leaves.subtree_root(start, end));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(leaves, m, start, start + k, complete, out);
        out.push(leaves.subtree_root(start + k, end));
    } else {
        subproof(leaves, m - k, start + k, end, false, out);
        out.push(leaves.subtree_root(start, start + k));
    }
}

/// The length of the inclusion proof of `index` in a tree of `size > index` leaves.
fn inclusion_len(index: u64, size: u64) -> usize {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// The length of the consistency proof between sizes `0 < m < n`.
fn consistency_len(m: u64, n: u64) -> usize {
    let inner = 64 - ((m - 1) ^ (n - 1)).leading_zeros();
    let border = (m - 1).checked_shr(inner).unwrap_or(0).count_ones();
    let seed = if m.is_power_of_two() { 0 } else { 1 };
    (seed + inner - m.trailing_zeros() + border) as usize
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{MerkleLog, leaf_hash};

    const MAX: u64 = 40;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(format!("record {i}").as_bytes())).collect()
    }

    fn roots(leaves: &[Hash]) -> Vec<Hash> {
        let mut log = MerkleLog::new();
        let mut roots = vec![log.root()];
        for leaf in leaves {
            log.append(*leaf);
            roots.push(log.root());
        }
        roots
    }

    fn flip(hash: &Hash, bit: usize) -> Hash {
        let mut out = *hash;
        out[bit / 8] ^= 1 << (bit % 8);
        out
    }

    #[test]
    fn split_is_the_largest_power_of_two_below() {
        assert_eq!([2, 3, 4, 5, 8, 9, 1 << 40].map(split), [1, 2, 2, 4, 4, 8, 1 << 39]);
    }

    #[test]
    fn inclusion_proofs_verify_for_every_index_and_size_up_to_40() {
        let all = leaves(MAX);
        let roots = roots(&all);
        for size in 1..=MAX {
            for index in 0..size {
                let proof = inclusion_proof(all.as_slice(), index, size).unwrap();
                assert_eq!(proof.len(), inclusion_len(index, size));
                let root = &roots[size as usize];
                let leaf = &all[index as usize];
                verify_inclusion(leaf, index, size, &proof, root)
                    .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
                assert!(verify_inclusion(&flip(leaf, 3), index, size, &proof, root).is_err());
                assert!(verify_inclusion(leaf, index, size, &proof, &flip(root, 200)).is_err());
                for (i, hash) in proof.iter().enumerate() {
                    let mut bad = proof.clone();
                    bad[i] = flip(hash, (i * 37) % 256);
                    assert!(verify_inclusion(leaf, index, size, &bad, root).is_err(), "{index}/{size} hash {i}");
                }
                if size > 1 {
                    let other = (index + 1) % size;
                    assert!(verify_inclusion(leaf, other, size, &proof, root).is_err(), "{index} as {other}");
                }
            }
        }
    }

    #[test]
    fn consistency_proofs_verify_for_every_pair_up_to_40() {
        let all = leaves(MAX);
        let roots = roots(&all);
        for n in 0..=MAX {
            for m in 0..=n {
                let proof = consistency_proof(all.as_slice(), m, n).unwrap();
                let (root_m, root_n) = (&roots[m as usize], &roots[n as usize]);
                verify_consistency(m, n, root_m, root_n, &proof).unwrap_or_else(|e| panic!("{m} -> {n}: {e}"));
                assert!(verify_consistency(m, n, &flip(root_m, 9), root_n, &proof).is_err(), "{m} -> {n}");
                // Every non-empty tree extends the empty one, whatever its root.
                let bad_new = verify_consistency(m, n, root_m, &flip(root_n, 77), &proof);
                assert_eq!(bad_new.is_err(), m > 0 || n == 0, "{m} -> {n}");
                for (i, hash) in proof.iter().enumerate() {
                    let mut bad = proof.clone();
                    bad[i] = flip(hash, (i * 53) % 256);
                    assert!(verify_consistency(m, n, root_m, root_n, &bad).is_err(), "{m} -> {n} hash {i}");
                }
            }
        }
    }

    #[test]
    fn a_consistency_proof_does_not_vouch_for_a_rewritten_prefix() {
        let all = leaves(20);
        let mut forged = all.clone();
        forged[3] = leaf_hash(b"rewritten");
        let proof = consistency_proof(forged.as_slice(), 7, 20).unwrap();
        let honest_old = roots(&all)[7];
        let forged_new = roots(&forged)[20];
        let err = verify_consistency(7, 20, &honest_old, &forged_new, &proof).unwrap_err();
        assert!(matches!(err, MerkleError::Mismatch { what: "root of the older tree", .. }), "{err}");
    }

    #[test]
    fn inclusion_errors_are_specific() {
        let all = leaves(10);
        let root = roots(&all)[10];
        assert_eq!(
            inclusion_proof(all.as_slice(), 10, 10).unwrap_err(),
            MerkleError::IndexOutOfRange { index: 10, size: 10 }
        );
        assert_eq!(
            inclusion_proof(all.as_slice(), 0, 11).unwrap_err(),
            MerkleError::SizeBeyondLeaves { size: 11, available: 10 }
        );
        let proof = inclusion_proof(all.as_slice(), 2, 10).unwrap();
        let err = verify_inclusion(&all[2], 2, 10, &proof[1..], &root).unwrap_err();
        assert_eq!(err, MerkleError::BadProofLength { kind: "inclusion", got: proof.len() - 1, want: proof.len() });
        assert!(err.to_string().contains("inclusion proof has"), "{err}");
        let err = verify_inclusion(&all[3], 2, 10, &proof, &root).unwrap_err();
        assert!(err.to_string().starts_with("root does not match"), "{err}");
        assert!(matches!(
            verify_inclusion(&all[2], 12, 10, &proof, &root),
            Err(MerkleError::IndexOutOfRange { index: 12, size: 10 })
        ));
    }

    #[test]
    fn consistency_errors_are_specific() {
        let all = leaves(10);
        let roots = roots(&all);
        assert_eq!(
            consistency_proof(all.as_slice(), 5, 4).unwrap_err(),
            MerkleError::SizesOutOfOrder { old: 5, new: 4 }
        );
        assert_eq!(
            consistency_proof(all.as_slice(), 5, 11).unwrap_err(),
            MerkleError::SizeBeyondLeaves { size: 11, available: 10 }
        );
        let proof = consistency_proof(all.as_slice(), 3, 10).unwrap();
        assert!(matches!(
            verify_consistency(3, 10, &roots[3], &roots[10], &proof[..proof.len() - 1]),
            Err(MerkleError::BadProofLength { kind: "consistency", .. })
        ));
        assert!(verify_consistency(3, 10, &roots[3], &roots[10], &[]).is_err());
        assert!(verify_consistency(4, 4, &roots[4], &roots[4], &proof).is_err());
        assert!(verify_consistency(4, 4, &roots[4], &roots[5], &[]).is_err());
        assert!(verify_consistency(0, 4, &roots[1], &roots[4], &[]).is_err());
        assert!(matches!(
            verify_consistency(5, 4, &roots[5], &roots[4], &[]),
            Err(MerkleError::SizesOutOfOrder { old: 5, new: 4 })
        ));
    }

    #[test]
    fn proof_lengths_match_the_rfc_examples() {
        // RFC 9162 section 2.1.5: in the 7-leaf tree, d0's path is [b, h, l]; the 3 -> 7 proof is
        // [c, d, g, l] and the 4 -> 7 proof is [l].
        let all = leaves(7);
        assert_eq!(inclusion_proof(all.as_slice(), 0, 7).unwrap().len(), 3);
        assert_eq!(consistency_proof(all.as_slice(), 3, 7).unwrap().len(), 4);
        assert_eq!(consistency_proof(all.as_slice(), 4, 7).unwrap().len(), 1);
        assert_eq!(consistency_proof(all.as_slice(), 6, 7).unwrap().len(), 3);
    }
}
