//! The evidence API: the newest signed checkpoint and RFC 9162 proofs, for
//! auditors and monitors who do not trust the operator.
//!
//! Owns: `GET /api/audit/checkpoint`, `/api/audit/proof/inclusion` and
//! `/api/audit/proof/consistency`, their parameters and JSON shapes.
//! Does not: build trees or proofs (`sluice-audit` does) or sign anything.
//!
//! These routes need no credential: they return a signed tree head and
//! hashes, never record contents. A caller verifies a record it already
//! holds (an export, a SIEM copy) by hashing it itself.

use super::ApiState;
use super::approvals::ApiError;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use sluice_audit::{AuditError, AuditReader, StoredCheckpoint};
use sluice_evidence::VerifierKey;

/// What the evidence routes read: a connection of their own to the store,
/// and the public half of the signing key (none when no key is configured).
#[derive(Debug)]
pub struct Evidence {
    pub reader: AuditReader,
    pub verifier: Option<VerifierKey>,
}

impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> ApiError {
        let status = match &error {
            AuditError::OutOfRange(_) => StatusCode::BAD_REQUEST,
            _ => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, error.to_string())
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct CheckpointParams {
    /// `note`: the signed note as `text/plain`, for note tooling.
    format: Option<String>,
}

/// `GET /api/audit/checkpoint[?format=note]`: the newest signed checkpoint.
pub(super) async fn checkpoint(
    State(state): State<ApiState>,
    params: Result<Query<CheckpointParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let Some(verifier) = &state.evidence.verifier else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no checkpoints: this node has no audit.signing_key_file (see `sluice keys generate`)",
        ));
    };
    let Some(checkpoint) = state.evidence.reader.latest_checkpoint().await? else {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "no checkpoint signed yet: the log is empty"));
    };
    if params.format.as_deref() == Some("note") {
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], checkpoint.note).into_response());
    }
    if let Some(format) = params.format.as_deref().filter(|f| *f != "json") {
        return Err(ApiError::bad_request(format!("format must be json or note, not {format:?}")));
    }
    let StoredCheckpoint { size, time, root, note } = checkpoint;
    Ok(axum::Json(json!({
        "origin": sluice_audit::checkpoint_origin(&verifier.log_id()),
        "log_id": verifier.log_id(),
        "size": size,
        "time": time,
        "root": root,
        "note": note,
        "public_key": verifier.to_string(),
    }))
    .into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct InclusionParams {
    leaf: u64,
    /// Default: the newest checkpoint's size.
    size: Option<u64>,
}

/// `GET /api/audit/proof/inclusion?leaf=<index>[&size=<n>]`: leaf `index`
/// is record `index + 1`.
pub(super) async fn inclusion(
    State(state): State<ApiState>,
    params: Result<Query<InclusionParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let size = match params.size {
        Some(size) => size,
        None => newest_size(&state).await?,
    };
    let proof = state.evidence.reader.inclusion_proof(params.leaf, size).await?;
    Ok(axum::Json(proof).into_response())
}

#[derive(Debug, Deserialize)]
pub(super) struct ConsistencyParams {
    from: u64,
    /// Default: the newest checkpoint's size.
    to: Option<u64>,
}

/// `GET /api/audit/proof/consistency?from=<m>[&to=<n>]`.
pub(super) async fn consistency(
    State(state): State<ApiState>,
    params: Result<Query<ConsistencyParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let to = match params.to {
        Some(to) => to,
        None => newest_size(&state).await?,
    };
    let proof = state.evidence.reader.consistency_proof(params.from, to).await?;
    Ok(axum::Json(proof).into_response())
}

async fn newest_size(state: &ApiState) -> Result<u64, ApiError> {
    match state.evidence.reader.latest_checkpoint().await? {
        Some(checkpoint) => Ok(checkpoint.size),
        None => Err(ApiError::bad_request("no checkpoint signed yet: give the tree size explicitly")),
    }
}
