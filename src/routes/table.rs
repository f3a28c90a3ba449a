//! The route table: every endpoint once, by its handler. A handler's
//! `#[utoipa::path]` says its method and path; from this table the server registers it
//! (with its `Allow` header for other methods, its wraps and its body limit) and the
//! OpenAPI document lists it, so the two cannot disagree and no list is kept by hand.

use std::sync::LazyLock;

use actix_web::http::Method;
use actix_web::Route;
use utoipa::openapi::OpenApi;

use super::{
    admin_accounts, admin_articles, admin_integrations, articles, auth, billing, health, me,
};
use crate::auth::{KeyScopes, Scope};

/// What serves an endpoint besides its handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Face {
    /// Health, readiness, metrics and the document: answer HEAD as GET, and no
    /// caller-dependent caching headers.
    Operations,
    /// `/v1`: answers depend on the caller, so no shared cache may keep them.
    Api,
    /// `/v1` routes that take an article's body (a larger body limit).
    ArticleWrites,
    /// `/v1` routes that take another service's events, signed over their raw body
    /// (the larger body limit too: an invoice with many lines is long).
    Webhooks,
}

/// One endpoint: its face, its own one-operation document, and its handler.
pub struct Endpoint {
    pub face: Face,
    pub document: OpenApi,
    route: fn() -> Route,
}

/// One path's endpoints together, as the server registers them.
pub struct Resource {
    pub face: Face,
    pub path: String,
    /// The `Allow` header of its 405 answers.
    pub allow: String,
    pub routes: Vec<(Method, fn() -> Route)>,
    /// The API key scopes that open each method (from `security(("api_key" = [..]))`).
    pub key_scopes: KeyScopes,
}

/// Each handler with a document made of its own `#[utoipa::path]` alone.
macro_rules! endpoints {
    ($($face:ident $module:ident :: $handler:ident),* $(,)?) => {
        vec![$({
            #[derive(utoipa::OpenApi)]
            #[openapi(paths($module::$handler))]
            struct One;
            Endpoint {
                face: Face::$face,
                document: <One as utoipa::OpenApi>::openapi(),
                route: || actix_web::web::to($module::$handler),
            }
        }),*]
    };
}

/// Every endpoint, in the order routes are tried: the hot path first.
pub fn endpoints() -> Vec<Endpoint> {
    endpoints![
        Operations health::healthz,
        Operations health::readyz,
        Operations health::metrics,
        Operations health::openapi_json,
        Api articles::read,
        Api auth::register,
        Api auth::login,
        Api auth::refresh,
        Api auth::logout,
        Api auth::request_password_reset,
        Api auth::reset_password,
        Api me::get_me,
        Api me::patch_me,
        Api me::delete_me,
        Api me::change_password,
        Api me::list_sessions,
        Api me::take_seat,
        Api me::delete_sessions,
        Api admin_accounts::list,
        Api admin_accounts::create,
        Api admin_accounts::get,
        Api admin_accounts::patch,
        Api admin_accounts::delete,
        Api admin_accounts::password_reset,
        Api admin_accounts::put_subscription,
        Api admin_accounts::delete_subscription,
        Api admin_accounts::delete_sessions,
        Api admin_accounts::seats,
        Api admin_accounts::audit_log,
        Api articles::list,
        Api articles::create_gift,
        Api billing::public_plans,
        Api billing::list_plans,
        Api billing::create_plan,
        Api billing::get_plan,
        Api billing::patch_plan,
        Api billing::delete_plan,
        Api billing::checkout,
        Api billing::billing_portal,
        Api admin_integrations::create_api_key,
        Api admin_integrations::list_api_keys,
        Api admin_integrations::revoke_api_key,
        Api admin_integrations::create_webhook,
        Api admin_integrations::list_webhooks,
        Api admin_integrations::get_webhook,
        Api admin_integrations::patch_webhook,
        Api admin_integrations::delete_webhook,
        Api admin_integrations::list_deliveries,
        Webhooks billing::stripe_webhook,
        ArticleWrites admin_articles::list,
        ArticleWrites admin_articles::create,
        ArticleWrites admin_articles::get,
        ArticleWrites admin_articles::patch,
        ArticleWrites admin_articles::delete,
    ]
}

/// The scopes an operation's `security(("api_key" = [...]))` alternatives name: any one
/// of them opens it to a key.
fn key_scopes_of(operation: &utoipa::openapi::path::Operation) -> Vec<Scope> {
    let Ok(serde_json::Value::Array(alternatives)) = serde_json::to_value(&operation.security)
    else {
        return Vec::new();
    };
    let mut scopes: Vec<Scope> = alternatives
        .iter()
        .filter_map(|alternative| alternative.get("api_key")?.as_array().cloned())
        .flatten()
        .map(|name| {
            name.as_str()
                .and_then(Scope::parse)
                .unwrap_or_else(|| panic!("unknown API key scope {name} in a route's security"))
        })
        .collect();
    scopes.sort_unstable();
    scopes.dedup();
    scopes
}

/// The path and the methods an endpoint's document declares, with the key scopes of each.
fn declared(endpoint: &Endpoint) -> (String, Vec<(Method, Vec<Scope>)>) {
    let mut paths = endpoint.document.paths.paths.iter();
    let (Some((path, item)), None) = (paths.next(), paths.next()) else {
        panic!("an endpoint's #[utoipa::path] declares exactly one path");
    };
    let methods = [
        (&item.get, Method::GET),
        (&item.put, Method::PUT),
        (&item.post, Method::POST),
        (&item.delete, Method::DELETE),
        (&item.patch, Method::PATCH),
        (&item.head, Method::HEAD),
        (&item.options, Method::OPTIONS),
        (&item.trace, Method::TRACE),
    ]
    .into_iter()
    .filter_map(|(operation, method)| {
        operation
            .as_ref()
            .map(|operation| (method, key_scopes_of(operation)))
    })
    .collect();
    (path.clone(), methods)
}

/// The endpoints grouped by path, in the table's order.
pub static RESOURCES: LazyLock<Vec<Resource>> = LazyLock::new(|| {
    let mut resources: Vec<Resource> = Vec::new();
    for endpoint in endpoints() {
        let (path, methods) = declared(&endpoint);
        let at = match resources.iter().position(|r| r.path == path) {
            Some(at) => at,
            None => {
                resources.push(Resource {
                    face: endpoint.face,
                    path,
                    allow: String::new(),
                    routes: Vec::new(),
                    key_scopes: KeyScopes::default(),
                });
                resources.len() - 1
            }
        };
        let resource = &mut resources[at];
        assert_eq!(
            resource.face, endpoint.face,
            "every endpoint of {} has the same face",
            resource.path
        );
        for (method, scopes) in methods {
            if !scopes.is_empty() {
                resource.key_scopes.0.push((method.clone(), scopes));
            }
            resource.routes.push((method, endpoint.route));
        }
    }
    for resource in &mut resources {
        let mut allow: Vec<&str> = resource.routes.iter().map(|(m, _)| m.as_str()).collect();
        if resource.face == Face::Operations && allow.contains(&"GET") {
            allow.push("HEAD");
        }
        resource.allow = allow.join(", ");
    }
    resources
});

impl Resource {
    /// The handlers of this path, each behind its method's guard.
    pub fn routes(&self) -> impl Iterator<Item = Route> + '_ {
        self.routes
            .iter()
            .map(|(method, route)| route().method(method.clone()))
    }
}

/// Whether a HEAD request to `path` is answered as GET (the operational routes: health
/// checks and monitors often probe with HEAD).
pub fn head_as_get(path: &str) -> bool {
    RESOURCES
        .iter()
        .any(|r| r.face == Face::Operations && r.path == path)
}

/// Every endpoint's document merged into `base`, in the table's order.
pub fn with_paths(mut base: OpenApi) -> OpenApi {
    for endpoint in endpoints() {
        base.merge(endpoint.document);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_path_is_declared_once_with_its_methods() {
        let allow: Vec<(&str, &str)> = RESOURCES
            .iter()
            .map(|r| (r.path.as_str(), r.allow.as_str()))
            .collect();
        assert!(allow.contains(&("/healthz", "GET, HEAD")));
        assert!(allow.contains(&("/v1/me", "GET, PATCH, DELETE")));
        assert!(allow.contains(&("/v1/admin/articles/{slug}", "GET, PATCH, DELETE")));
        assert!(allow.contains(&("/v1/admin/accounts/{id}/subscription", "PUT, DELETE")));
        let mut paths: Vec<&str> = allow.iter().map(|(p, _)| *p).collect();
        let all = paths.len();
        paths.sort_unstable();
        paths.dedup();
        assert_eq!(paths.len(), all, "each path is one resource");
        // The hot path is tried right after the operational routes.
        assert_eq!(RESOURCES[4].path, "/v1/articles/{slug}");
        assert!(head_as_get("/metrics") && !head_as_get("/v1/articles/{slug}"));
    }
}
