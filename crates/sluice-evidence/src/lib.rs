//! Evidence an auditor can check without trusting the operator: the RFC 9162 Merkle log over audit
//! records, its inclusion and consistency proofs, and checkpoints signed in the C2SP signed-note format.
//!
//! Owns: the tree hashes, the append-only tree state ([`MerkleLog`]), proof generation over any
//! [`LeafSource`] and proof verification, Ed25519 checkpoint keys ([`SigningKey`], [`VerifierKey`])
//! and checkpoint notes ([`Checkpoint`]). Pure: no IO, no store, no clock.
//! Does not: read or write the audit store, choose when to checkpoint, or serve proofs. The audit
//! store, the API and the CLI wire it in.
//!
//! # Layout
//! - [`merkle`]: [`leaf_hash`], [`node_hash`], [`MerkleLog`], [`LeafSource`], [`MerkleError`].
//! - [`proof`]: [`inclusion_proof`], [`consistency_proof`], [`verify_inclusion`], [`verify_consistency`].
//! - [`keys`]: [`SigningKey`], [`VerifierKey`], [`KeyError`].
//! - [`checkpoint`]: [`Checkpoint`], [`CheckpointError`].
//!
//! # The tree (for auditors re-implementing verify)
//! RFC 9162 (Certificate Transparency v2) section 2.1 over SHA-256. Leaf `i` is audit record `seq = i + 1`;
//! its bytes are the record's canonical body exactly as `sluice-audit` stores and chains it:
//!
//! ```text
//! leaf   = SHA-256(0x00 ‖ body)
//! node   = SHA-256(0x01 ‖ left ‖ right)
//! MTH({}) = SHA-256("")     MTH({d0}) = leaf(d0)
//! MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n]))   k = the largest power of two < n
//! ```
//!
//! Proofs are RFC 9162 `PATH` (inclusion, deepest sibling first) and `PROOF`/`SUBPROOF`
//! (consistency), and verify with the algorithms of sections 2.1.3.2 and 2.1.4.2.

pub mod checkpoint;
pub mod keys;
pub mod merkle;
pub mod proof;

pub use checkpoint::{Checkpoint, CheckpointError};
pub use keys::{KeyError, SigningKey, VerifierKey};

pub use merkle::{Hash, LeafSource, MerkleError, MerkleLog, empty_root, leaf_hash, node_hash};
pub use proof::{consistency_proof, inclusion_proof, verify_consistency, verify_inclusion};
