use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;

/// 200 while the process serves; touches nothing else.
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// 200 when the database answers.
pub async fn readyz(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    match state.store.ping().await {
        Ok(()) => Ok(HttpResponse::Ok().json(json!({"status": "ok"}))),
        Err(error) => {
            tracing::warn!(%error, "readiness check failed");
            Err(ApiError::Unavailable("the database is not answering"))
        }
    }
}

/// Prometheus text format.
pub async fn metrics(state: web::Data<AppState>) -> ApiResult<HttpResponse> {
    for (pool, open, idle) in state.store.pool_use() {
        crate::metrics::connections(pool, open, idle);
    }
    let handle =
        crate::metrics::handle().ok_or(ApiError::Unavailable("metrics are not being recorded"))?;
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render()))
}
