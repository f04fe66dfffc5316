//! The HTTP API: `/healthz`, `/metrics` (Prometheus text format), the
//! reviewer API under `/api/approvals`, the evidence API under `/api/audit`
//! (signed checkpoint, inclusion and consistency proofs) and the OpenAPI
//! document at `/api/openapi.json`.
//!
//! Owns: routes and their JSON shapes; the OpenAPI document
//! (`api/openapi.json`, kept in step with the routes by a test).
//! Does not: hold state beyond handles to the gateway and metrics registry,
//! or apply reviewer rules (`sluice-approval` does, through the gateway).

mod approvals;
mod evidence;

pub use evidence::Evidence;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus_client::registry::Registry;
use sluice_audit::StoreHealth;
use sluice_pipeline::Gateway;
use std::sync::Arc;

/// The OpenAPI 3.1 description of the reviewer API, served as is.
pub const OPENAPI: &str = include_str!("api/openapi.json");

#[derive(Clone)]
struct ApiState {
    gateway: Gateway,
    evidence: Arc<Evidence>,
    registry: Arc<Registry>,
}

/// Every route. Request bodies are limited by axum's default body limit
/// (2 MiB); the server should be served with
/// `into_make_service_with_connect_info::<SocketAddr>()` so refused
/// credentials are recorded with the caller's address.
pub fn router(gateway: Gateway, evidence: Arc<Evidence>, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/openapi.json", get(openapi))
        .route("/api/approvals", get(approvals::list))
        .route("/api/approvals/{id}", get(approvals::show))
        .route("/api/approvals/{id}/approve", post(approvals::approve))
        .route("/api/approvals/{id}/deny", post(approvals::deny))
        .route("/api/audit/checkpoint", get(evidence::checkpoint))
        .route("/api/audit/proof/inclusion", get(evidence::inclusion))
        .route("/api/audit/proof/consistency", get(evidence::consistency))
        .fallback(approvals::not_found)
        .with_state(ApiState { gateway, evidence, registry })
}

/// 200 while Sluice can record; 503 (fail closed) while the audit store
/// cannot be written, with the reason.
async fn healthz(State(state): State<ApiState>) -> Response {
    let audit = state.gateway.audit().health();
    let status = match audit {
        StoreHealth::Healthy => StatusCode::OK,
        StoreHealth::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    let body = serde_json::json!({
        "status": if status == StatusCode::OK { "ok" } else { "unavailable" },
        "audit": audit,
        "shutting_down": state.gateway.shutdown_token().is_cancelled(),
    });
    (status, axum::Json(body)).into_response()
}

async fn metrics(State(state): State<ApiState>) -> Response {
    let mut text = String::new();
    if prometheus_client::encoding::text::encode(&mut text, &state.registry).is_err() {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    ([(header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], text).into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

#[cfg(test)]
mod tests {
    use super::OPENAPI;

    /// The document parses, is 3.1, and describes every route the router
    /// serves under `/api` with the methods it serves them with.
    #[test]
    fn openapi_describes_every_route() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).expect("openapi.json is JSON");
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        let paths = doc["paths"].as_object().expect("paths");
        for (path, method) in [
            ("/api/approvals", "get"),
            ("/api/approvals/{id}", "get"),
            ("/api/approvals/{id}/approve", "post"),
            ("/api/approvals/{id}/deny", "post"),
            ("/api/audit/checkpoint", "get"),
            ("/api/audit/proof/inclusion", "get"),
            ("/api/audit/proof/consistency", "get"),
            ("/api/openapi.json", "get"),
            ("/healthz", "get"),
            ("/metrics", "get"),
        ] {
            assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} is not documented");
        }
        assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    }

    /// Every `$ref` points at a schema or response that exists.
    #[test]
    fn openapi_refs_resolve() {
        let doc: serde_json::Value = serde_json::from_str(OPENAPI).unwrap();
        let mut refs = Vec::new();
        collect_refs(&doc, &mut refs);
        assert!(!refs.is_empty());
        for reference in refs {
            let pointer = reference.strip_prefix('#').expect("local ref");
            assert!(doc.pointer(pointer).is_some(), "dangling $ref {reference}");
        }
    }

    fn collect_refs(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::Object(map) => {
                for (key, v) in map {
                    match (key.as_str(), v.as_str()) {
                        ("$ref", Some(target)) => out.push(target.to_string()),
                        _ => collect_refs(v, out),
                    }
                }
            }
            serde_json::Value::Array(items) => items.iter().for_each(|v| collect_refs(v, out)),
            _ => {}
        }
    }
}
