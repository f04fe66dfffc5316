//! Reading the Merkle log back: checkpoints, inclusion and consistency
//! proofs, records in seq order and payloads.
//!
//! Owns: the [`AuditReader`] methods the evidence API, the SIEM sinks and
//! export use, and the proof objects they return.
//! Does not: sign (the writer does) or verify proofs (sluice-evidence does).

use serde::Serialize;
use sluice_evidence::{Hash, LeafSource, consistency_proof, inclusion_proof};

use crate::AuditError;
use crate::encoding::AuditRecord;
use crate::reader::{AuditReader, decode_row};
use crate::store::{Store, StoredCheckpoint};
use crate::tree::{BLOCK_LEAVES, StoreLeaves};

/// RFC 9162 inclusion proof of one leaf: record `leaf_index + 1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    /// `SHA-256(0x00 ‖ body)`, hex. A verifier recomputes it from its own
    /// copy of the record; the proof carries no record text.
    pub leaf_hash: String,
    /// Sibling hashes, deepest first, hex.
    pub proof: Vec<String>,
    /// The root the proof leads to, hex.
    pub root: String,
}

/// RFC 9162 consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    pub first: u64,
    pub second: u64,
    pub first_root: String,
    pub second_root: String,
    pub proof: Vec<String>,
}

impl AuditReader {
    /// Up to `limit` records after seq `after`, in seq order.
    pub async fn records_after(&self, after: u64, limit: u64) -> Result<Vec<AuditRecord>, AuditError> {
        let rows = {
            let mut store = self.store.lock().await;
            store.records_after(after, limit).await.map_err(|e| self.query_error(e))?
        };
        rows.into_iter().map(decode_row).collect()
    }

    /// Up to `limit` records after seq `after` as `(seq, canonical body)`,
    /// exactly the stored bytes.
    pub async fn bodies_after(&self, after: u64, limit: u64) -> Result<Vec<(u64, String)>, AuditError> {
        let mut store = self.store.lock().await;
        let last = after.saturating_add(limit);
        let rows = store.bodies(after.saturating_add(1), last).await.map_err(|e| self.query_error(e))?;
        Ok(rows.into_iter().map(|(seq, body)| (seq.max(0) as u64, body)).collect())
    }

    /// Up to `limit` checkpoints with a size above `after`, smallest first.
    pub async fn checkpoints_after(&self, after: u64, limit: u64) -> Result<Vec<StoredCheckpoint>, AuditError> {
        let mut store = self.store.lock().await;
        store.checkpoints(after, limit).await.map_err(|e| self.query_error(e))
    }

    /// The newest checkpoint, if any was signed.
    pub async fn latest_checkpoint(&self) -> Result<Option<StoredCheckpoint>, AuditError> {
        let mut store = self.store.lock().await;
        store.latest_checkpoint().await.map_err(|e| self.query_error(e))
    }

    /// The payload stored beside record `seq` (a recording chunk), if any.
    pub async fn payload(&self, seq: u64) -> Result<Option<Vec<u8>>, AuditError> {
        let mut store = self.store.lock().await;
        store.payload(seq).await.map_err(|e| self.query_error(e))
    }

    /// The inclusion proof of leaf `leaf` (record `leaf + 1`) in the tree of
    /// the first `size` records.
    pub async fn inclusion_proof(&self, leaf: u64, size: u64) -> Result<InclusionProof, AuditError> {
        let mut store = self.store.lock().await;
        // The leaf itself is read too: a record retention rewrote keeps its
        // original leaf, which only the store's leaf source knows.
        let probe = |s: &StoreLeaves| {
            let proof = inclusion_proof(s, leaf, size).map(|_| ());
            if leaf < size {
                s.leaf(leaf);
            }
            proof
        };
        let source = self.leaves_for(&mut store, size, probe).await?;
        let proof = inclusion_proof(&source, leaf, size).map_err(|e| AuditError::OutOfRange(e.to_string()))?;
        let root = root_of(&source, size);
        Ok(InclusionProof {
            leaf_index: leaf,
            tree_size: size,
            leaf_hash: hex::encode(source.leaf(leaf)),
            proof: proof.iter().map(hex::encode).collect(),
            root: hex::encode(root),
        })
    }

    /// The consistency proof that the tree of the first `first` records is a
    /// prefix of the tree of the first `second`.
    pub async fn consistency_proof(&self, first: u64, second: u64) -> Result<ConsistencyProof, AuditError> {
        let mut store = self.store.lock().await;
        let source = self.leaves_for(&mut store, second, |s| consistency_proof(s, first, second).map(|_| ())).await?;
        let proof = consistency_proof(&source, first, second).map_err(|e| AuditError::OutOfRange(e.to_string()))?;
        let first_source = self.leaves_for(&mut store, first, |_| Ok(())).await?;
        Ok(ConsistencyProof {
            first,
            second,
            first_root: hex::encode(root_of(&first_source, first)),
            second_root: hex::encode(root_of(&source, second)),
            proof: proof.iter().map(hex::encode).collect(),
        })
    }

    /// A leaf source for the tree of `size` records holding every leaf that
    /// `probe` and the tree's root read: block roots, plus the leaves of the
    /// blocks they asked for.
    async fn leaves_for(
        &self,
        store: &mut Store,
        size: u64,
        probe: impl Fn(&StoreLeaves) -> Result<(), sluice_evidence::MerkleError>,
    ) -> Result<StoreLeaves, AuditError> {
        let max_seq = store.max_seq().await.map_err(|e| self.query_error(e))?;
        if size > max_seq {
            return Err(AuditError::OutOfRange(format!("tree size {size} is beyond the {max_seq} records in the log")));
        }
        let blocks = store.blocks(size / BLOCK_LEAVES).await.map_err(|e| self.query_error(e))?;
        let mut source = StoreLeaves::new(size, blocks);
        probe(&source).map_err(|e| AuditError::OutOfRange(e.to_string()))?;
        root_of(&source, size);
        for block in source.wanted() {
            let first = block * BLOCK_LEAVES + 1;
            let last = ((block + 1) * BLOCK_LEAVES).min(size);
            let bodies = store.bodies(first, last).await.map_err(|e| self.query_error(e))?;
            if bodies.len() as u64 != last + 1 - first {
                return Err(AuditError::Corrupt(format!(
                    "records {first}..={last} are not all in the log; run `sluice audit verify`"
                )));
            }
            let redacted = store.redactions(first, last).await.map_err(|e| self.query_error(e))?;
            source.load(block, &bodies, &redacted);
        }
        Ok(source)
    }
}

/// The root of the first `size` leaves of `source`.
fn root_of(source: &StoreLeaves, size: u64) -> Hash {
    if size == 0 { sluice_evidence::empty_root() } else { source.subtree_root(0, size) }
}
