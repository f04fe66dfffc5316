//! The HTTP API: `/healthz` and `/metrics` (Prometheus text format).
//!
//! Owns: routes and their JSON shapes.
//! Does not: hold state beyond handles to the gateway and metrics registry.

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::registry::Registry;
use sluice_audit::StoreHealth;
use sluice_pipeline::Gateway;
use std::sync::Arc;

#[derive(Clone)]
struct ApiState {
    gateway: Gateway,
    registry: Arc<Registry>,
}

pub fn router(gateway: Gateway, registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(ApiState { gateway, registry })
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
