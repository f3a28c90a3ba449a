//! API keys: made by an admin (shown once), listed, revoked.

use crate::auth::{ApiKeyDigests, Scope};
use crate::error::{ApiError, ApiResult, FieldError};
use crate::store::{ApiKeyRow, AuditEntry, NewApiKey, Store, StoreError};

const MAX_NAME: usize = 100;

/// A key just made, and the key itself (never stored, never shown again).
pub struct MadeKey {
    pub row: ApiKeyRow,
    pub key: String,
}

/// Makes a key named `name` with `scopes` (at least one, each known).
pub async fn create(
    store: &Store,
    digests: &ApiKeyDigests,
    actor: &str,
    name: Option<String>,
    scopes: Option<Vec<String>>,
    now: i64,
) -> ApiResult<MadeKey> {
    let mut errors = Vec::new();
    let name = name.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        errors.push(FieldError::new(
            "name",
            format!("must be 1 to {MAX_NAME} characters, without control characters"),
        ));
    }
    let known = Scope::ALL.map(Scope::as_str).join(", ");
    let scopes: Vec<Scope> = match scopes {
        None => {
            errors.push(FieldError::new(
                "scopes",
                format!("is required: any of {known}"),
            ));
            Vec::new()
        }
        Some(given) if given.is_empty() => {
            errors.push(FieldError::new(
                "scopes",
                format!("must name at least one of {known}"),
            ));
            Vec::new()
        }
        Some(given) => match given.iter().find(|s| Scope::parse(s).is_none()) {
            Some(unknown) => {
                errors.push(FieldError::new(
                    "scopes",
                    format!("{unknown:?} is not a scope; scopes are {known}"),
                ));
                Vec::new()
            }
            None => given.iter().filter_map(|s| Scope::parse(s)).collect(),
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let made = digests
        .generate()
        .ok_or_else(|| ApiError::internal("no secret to digest API keys with"))?;
    let audit = AuditEntry::new(Some(actor), "api_key.create", "api_key", None);
    let row = store
        .create_api_key(
            &NewApiKey {
                name: &name,
                scopes: &Scope::join(&scopes),
                prefix: &made.prefix,
                digest: &made.digest,
                digest_kid: &made.digest_kid,
                created_by: actor,
            },
            &audit,
            now,
        )
        .await?;
    Ok(MadeKey { row, key: made.key })
}

/// Revokes a key: its next request, on any instance, is refused.
pub async fn revoke(store: &Store, actor: &str, id: &str, now: i64) -> ApiResult<()> {
    let audit = AuditEntry::new(Some(actor), "api_key.revoke", "api_key", None);
    store
        .revoke_api_key(id, &audit, now)
        .await
        .map_err(|error| match error {
            StoreError::NotFound => {
                ApiError::NotFound("no API key that is not revoked has this id")
            }
            other => other.into(),
        })
}
