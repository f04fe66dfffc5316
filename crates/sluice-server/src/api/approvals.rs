//! The reviewer API: list, show, approve and deny held requests, for a
//! caller authenticated with a bearer token (API key or OIDC access token).
//!
//! Owns: bearer authentication of API calls, who may see which request
//! (members of the request's connection's reviewer groups), the JSON shape
//! of a request, and the mapping of approval errors to HTTP statuses.
//! Does not: apply the reviewer rules on decisions (the approval store does,
//! through `Gateway::approvals`).

use super::ApiState;
use axum::body::Bytes;
use axum::extract::connect_info::ConnectInfo;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use sluice_approval::{ApprovalError, ApprovalRequest, ApprovalStatus, Decided, Ruling};
use sluice_model::Principal;
use sluice_pipeline::ApprovalsError;
use std::net::SocketAddr;
use uuid::Uuid;

/// An error answered as `{"error": "<message>"}`; a 401 also carries
/// `WWW-Authenticate: Bearer`.
#[derive(Debug)]
pub(super) struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError { status, message: message.into() }
    }

    pub(super) fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::Json(json!({ "error": self.message }))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ApprovalError> for ApiError {
    fn from(error: ApprovalError) -> ApiError {
        let status = match &error {
            ApprovalError::NotAReviewer { .. } | ApprovalError::SelfApproval { .. } => StatusCode::FORBIDDEN,
            ApprovalError::UnknownRequest(_) => StatusCode::NOT_FOUND,
            ApprovalError::NotPending { .. } | ApprovalError::Expired { .. } | ApprovalError::AlreadyDecided { .. } => {
                StatusCode::CONFLICT
            }
            ApprovalError::Open(_) | ApprovalError::Store(_) | ApprovalError::Corrupt { .. } => {
                tracing::error!(error = %error, "approval store failed a reviewer API call");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        ApiError::new(status, error.to_string())
    }
}

impl From<ApprovalsError> for ApiError {
    fn from(error: ApprovalsError) -> ApiError {
        match error {
            ApprovalsError::Approval(error) => error.into(),
            unrecorded @ ApprovalsError::Unrecorded { .. } => {
                tracing::error!(error = %unrecorded, "a reviewer's decision could not be recorded");
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, unrecorded.to_string())
            }
        }
    }
}

/// The caller, authenticated from `Authorization: Bearer <token>`.
pub(super) struct Caller(Principal);

impl FromRequestParts<ApiState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &ApiState) -> Result<Caller, ApiError> {
        let token = bearer_token(parts.headers.get(header::AUTHORIZATION))?;
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or_else(|| "unknown".to_string(), |ConnectInfo(addr)| addr.to_string());
        let principal = state
            .gateway
            .authenticate("http", &peer, token)
            .await
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, e.to_string()))?;
        Ok(Caller(principal))
    }
}

/// The token of an `Authorization: Bearer <token>` header (scheme name
/// case-insensitive, as RFC 9110 says).
fn bearer_token(header: Option<&HeaderValue>) -> Result<&str, ApiError> {
    let unauthorized = |message: &str| ApiError::new(StatusCode::UNAUTHORIZED, message);
    let value =
        header.ok_or_else(|| unauthorized("missing Authorization: Bearer <token> (an API key or OIDC token)"))?;
    let value = value.to_str().map_err(|_| unauthorized("the Authorization header is not text"))?;
    match value.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(unauthorized("the Authorization header must be `Bearer <token>`")),
    }
}

/// Refuses a caller who is a reviewer on no connection at all, before
/// looking anything up: they learn nothing about which requests exist.
fn reviews_somewhere(caller: &Principal, state: &ApiState) -> Result<(), ApiError> {
    let rules = state.gateway.approvals().rules();
    let mut groups = rules.reviewer_groups.iter().chain(rules.connections.values().flat_map(|c| &c.reviewer_groups));
    if groups.any(|g| caller.groups.contains(g)) {
        return Ok(());
    }
    Err(ApiError::new(StatusCode::FORBIDDEN, format!("{} is not in any reviewer group", caller.subject)))
}

/// Whether `caller` is in a reviewer group of `request`'s connection.
fn may_review(caller: &Principal, request: &ApprovalRequest, state: &ApiState) -> Result<(), ApprovalError> {
    let allowed = state.gateway.approvals().rules().reviewer_groups_for(&request.connection);
    if caller.groups.iter().any(|g| allowed.contains(g)) {
        return Ok(());
    }
    Err(ApprovalError::NotAReviewer {
        reviewer: caller.subject.clone(),
        connection: request.connection.clone(),
        allowed: allowed.to_vec(),
    })
}

#[derive(Debug, Deserialize)]
pub(super) struct ListParams {
    status: Option<String>,
}

/// `GET /api/approvals[?status=pending|approved|denied|expired|used|all]`:
/// the requests the caller may review, newest state from the store.
pub(super) async fn list(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let status = match params.status.as_deref() {
        None | Some("all") => None,
        Some(text) => Some(text.parse::<ApprovalStatus>().map_err(ApiError::bad_request)?),
    };
    let approvals = state.gateway.approvals();
    let items: Vec<Value> = approvals
        .list(status)
        .await?
        .iter()
        .filter(|request| may_review(&caller, request, &state).is_ok())
        .map(|request| request_json(request, approvals.link(request.id)))
        .collect();
    Ok(axum::Json(json!({ "items": items })).into_response())
}

/// `GET /api/approvals/{id}`.
pub(super) async fn show(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    reviews_somewhere(&caller, &state)?;
    let approvals = state.gateway.approvals();
    let request = approvals.get(id).await?;
    may_review(&caller, &request, &state)?;
    Ok(axum::Json(request_json(&request, approvals.link(id))).into_response())
}

/// `POST /api/approvals/{id}/approve`, body `{"comment": "..."}` (optional).
pub(super) async fn approve(
    state: State<ApiState>,
    caller: Caller,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    decide(state, caller, id, body, Ruling::Approve).await
}

/// `POST /api/approvals/{id}/deny`, body `{"comment": "..."}` (required:
/// the requester is told it).
pub(super) async fn deny(
    state: State<ApiState>,
    caller: Caller,
    id: Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    decide(state, caller, id, body, Ruling::Deny).await
}

/// Unknown paths answer in the API's error shape.
pub(super) async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "no such route; see /api/openapi.json")
}

const COMMENT_BODY: &str = r#"a JSON object {"comment": "..."}"#;

#[derive(Debug, Default, Deserialize)]
struct DecideBody {
    #[serde(default)]
    comment: Option<String>,
}

async fn decide(
    State(state): State<ApiState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
    ruling: Ruling,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let body = body.map_err(|e| ApiError::new(e.status(), e.body_text()))?;
    let comment = decide_comment(&body, ruling)?;
    reviews_somewhere(&caller, &state)?;
    let approvals = state.gateway.approvals();
    // The store checks the reviewer's groups on the decision too; checking
    // here as well keeps the answer the same as `show`'s.
    let request = approvals.get(id).await?;
    may_review(&caller, &request, &state)?;
    let Decided { request, outcome, .. } = approvals.decide(id, &caller, ruling, &comment).await?;
    let mut body = request_json(&request, approvals.link(id));
    body["outcome"] = json!(outcome.status().as_str());
    Ok(axum::Json(body).into_response())
}

/// The comment of a decision body: an empty body is no comment; a deny
/// needs one (the requester is told why).
fn decide_comment(body: &[u8], ruling: Ruling) -> Result<String, ApiError> {
    let parsed = if body.iter().all(u8::is_ascii_whitespace) {
        DecideBody::default()
    } else {
        let malformed = |e: serde_json::Error| ApiError::bad_request(format!("the body must be {COMMENT_BODY}: {e}"));
        let value: Value = serde_json::from_slice(body).map_err(malformed)?;
        if !value.is_object() {
            return Err(ApiError::bad_request(format!("the body must be {COMMENT_BODY}")));
        }
        serde_json::from_value::<DecideBody>(value).map_err(malformed)?
    };
    let comment = parsed.comment.unwrap_or_default().trim().to_string();
    if ruling == Ruling::Deny && comment.is_empty() {
        return Err(ApiError::bad_request("a deny needs a non-empty comment: the requester is told it"));
    }
    Ok(comment)
}

fn parse_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| ApiError::bad_request(format!("`{text}` is not an approval request id (a UUID)")))
}

/// A request as the API shows it (see `ApprovalRequest` in `openapi.json`).
fn request_json(request: &ApprovalRequest, link: Option<String>) -> Value {
    let decisions: Vec<Value> = request
        .decisions
        .iter()
        .map(|d| {
            json!({
                "reviewer": d.reviewer,
                "ruling": d.ruling.as_str(),
                "comment": d.comment,
                "decided_at": d.decided_at,
            })
        })
        .collect();
    json!({
        "id": request.id.to_string(),
        "status": request.status.as_str(),
        "principal": {
            "subject": request.principal.subject,
            "kind": request.principal.kind.as_str(),
            "groups": request.principal.groups,
            "issuer": request.principal.issuer,
        },
        "connection": request.connection,
        "statement": request.statement,
        "params_sha256": request.params_sha256,
        "policy": request.policy,
        "reason": request.reason,
        "classification": request.classification,
        "row_estimate": request.row_estimate,
        "approvals_required": request.approvals_required,
        "approvals": request.approvals(),
        "created_at": request.created_at,
        "expires_at": request.expires_at,
        "approved_at": request.approved_at,
        "grant_expires_at": request.grant_expires_at,
        "used_at": request.used_at,
        "decisions": decisions,
        "link": link,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(error: ApprovalError) -> StatusCode {
        ApiError::from(error).status
    }

    #[test]
    fn approval_errors_map_to_statuses() {
        let id = Uuid::nil();
        let reviewer = "alice".to_string();
        assert_eq!(status_of(ApprovalError::UnknownRequest(id)), StatusCode::NOT_FOUND);
        assert_eq!(status_of(ApprovalError::SelfApproval { id, reviewer: reviewer.clone() }), StatusCode::FORBIDDEN);
        let not_reviewer =
            ApprovalError::NotAReviewer { reviewer: reviewer.clone(), connection: "c".into(), allowed: vec![] };
        assert_eq!(status_of(not_reviewer), StatusCode::FORBIDDEN);
        let not_pending = ApprovalError::NotPending { id, status: ApprovalStatus::Denied };
        assert_eq!(status_of(not_pending), StatusCode::CONFLICT);
        assert_eq!(status_of(ApprovalError::AlreadyDecided { id, reviewer }), StatusCode::CONFLICT);
        let expired = ApprovalError::Expired { id, expires_at: chrono::Utc::now() };
        assert_eq!(status_of(expired), StatusCode::CONFLICT);
        assert_eq!(status_of(ApprovalError::Open("down".into())), StatusCode::SERVICE_UNAVAILABLE);
        let unrecorded =
            ApprovalsError::Unrecorded { step: "the decision was stored", source: sluice_audit::AuditError::Closed };
        let error = ApiError::from(unrecorded);
        assert_eq!(error.status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            error.message.starts_with("the decision was stored, but the audit log cannot be written"),
            "{}",
            error.message
        );
    }

    #[test]
    fn bearer_tokens_are_read_from_the_header() {
        let header = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer_token(Some(&header("Bearer abc"))).unwrap(), "abc");
        assert_eq!(bearer_token(Some(&header("bearer  abc "))).unwrap(), "abc");
        for bad in ["Basic abc", "Bearer", "Bearer  ", "abc"] {
            let error = bearer_token(Some(&header(bad))).unwrap_err();
            assert_eq!(error.status, StatusCode::UNAUTHORIZED, "{bad}");
        }
        assert_eq!(bearer_token(None).unwrap_err().status, StatusCode::UNAUTHORIZED);
        let response = bearer_token(None).unwrap_err().into_response();
        assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
    }

    #[test]
    fn decision_bodies() {
        assert_eq!(decide_comment(b"", Ruling::Approve).unwrap(), "");
        assert_eq!(decide_comment(b"{}", Ruling::Approve).unwrap(), "");
        assert_eq!(decide_comment(br#"{"comment": " ok "}"#, Ruling::Approve).unwrap(), "ok");
        assert_eq!(decide_comment(br#"{"comment": "no"}"#, Ruling::Deny).unwrap(), "no");
        for (body, ruling) in [
            (&b""[..], Ruling::Deny),
            (br#"{"comment": "  "}"#, Ruling::Deny),
            (br#"{"comment": 7}"#, Ruling::Approve),
            (b"{not json", Ruling::Approve),
            (b"[]", Ruling::Approve),
        ] {
            let error = decide_comment(body, ruling).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn ids_must_be_uuids() {
        assert!(parse_id("0192f0c1-7c9a-7cc0-8b3e-2f4f0c1d2e3f").is_ok());
        assert_eq!(parse_id("nope").unwrap_err().status, StatusCode::BAD_REQUEST);
    }
}
