use actix_web::{web, HttpResponse};

use super::views::AccountView;
use crate::auth::Authenticated;
use crate::error::{ApiError, ApiResult};
use crate::startup::AppState;
use crate::store::now_ts;

pub async fn get_me(state: web::Data<AppState>, caller: Authenticated) -> ApiResult<HttpResponse> {
    let account = state
        .store
        .account_by_id(&caller.0.account_id)
        .await?
        .ok_or(ApiError::InvalidToken(
            "the account of this access token no longer exists",
        ))?;
    Ok(HttpResponse::Ok().json(AccountView::new(&account, now_ts())))
}
