use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use serde::Serialize;
use utoipa::ToSchema;

/// `{"status": "ok"}`.
#[derive(Serialize, ToSchema)]
pub struct Status {
    #[schema(example = "ok")]
    pub status: String,
}

#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "operations",
    responses((status = 200, description = "The process serves", body = Status)))]
/// 200 while the process serves; touches nothing else.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Below this much free space beside a SQLite database, writes are about to fail.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "operations",
    responses((status = 200, description = "The database answers", body = Status),
        (status = 503, description = "`unavailable`: the database is not answering; `storage_full`: the SQLite database's disk is full", body = crate::error::Problem, content_type = "application/problem+json")))]
/// 200 when the database answers (and, on SQLite, its disk has room for writes).
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    // A SQLite database whose disk is full still answers reads, but no write succeeds:
    // not ready, until space is freed.
    if state
        .store
        .sqlite_free_bytes()
        .is_some_and(|free| free < MIN_FREE_BYTES)
    {
        tracing::warn!("readiness check failed: the database's disk is full");
        return Err(ApiError::StorageFull);
    }
    match state.store.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ok"}))),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(ApiError::Unavailable("the database is not answering"))
        }
    }
}

#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain; version=0.0.4", body = String),
        (status = 503, description = "`unavailable`: metrics are not being recorded", body = crate::error::Problem, content_type = "application/problem+json")))]
/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    crate::metrics::before_scrape(&state.store.pool_use());
    crate::metrics::memory(state.engine.memory_lent(), state.engine.cache_budget_now());
    let handle =
        crate::metrics::handle().ok_or(ApiError::Unavailable("metrics are not being recorded"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render()))
}

/// The OpenAPI document this server answers with, rendered at start-up from the route
/// table (see `openapi::document`).
static DOCUMENT: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();

/// Serves `document` at `/openapi.json` from now on.
pub fn publish_document(document: &'static str) {
    let _ = DOCUMENT.set(document);
}

/// This document (OpenAPI 3.1)
#[utoipa::path(get, operation_id = "openapi", path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "This document", content_type = "application/json", body = Object)))]
pub async fn openapi_json() -> ApiResult<HttpResponse> {
    let document = DOCUMENT.get().ok_or(ApiError::Unavailable(
        "the OpenAPI document is not ready yet",
    ))?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(*document))
}
