//! The reader's website (`PAYWALL_SITE=on`): pages rendered on the server that work
//! without JavaScript. Every page asks `app/` what the JSON routes ask it (an article
//! page reads through `app::reading::read` and `paywall::visible_text`, like the API),
//! so a page and a JSON answer cannot decide differently; this module only renders.
//!
//! A browser is signed in by the `paywall_session` cookie (the access token) and kept
//! signed in by `paywall_refresh` (the refresh token, rotated when the access token
//! has run out). Forms carry a CSRF token that must match the `paywall_csrf` cookie,
//! and must come from this site (`Origin`, `Sec-Fetch-Site`).

mod account;
pub mod i18n;
mod pages;
pub mod render;

use actix_web::cookie::{Cookie, SameSite};
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;

use crate::app::sessions;
use crate::auth::identity::resolve;
use crate::auth::{AuthAccount, Caller};
use crate::domain::Language;
use crate::error::ApiError;
use crate::state::AppState;
use i18n::Texts;

pub const REFRESH_COOKIE: &str = "paywall_refresh";
pub const CSRF_COOKIE: &str = "paywall_csrf";
const STYLESHEET: &str = include_str!("site.css");

/// Registers the pages (only when `PAYWALL_SITE=on`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/", page(pages::front))
        .route("/sections/{section}", page(pages::section))
        .route("/articles/{slug}", page(pages::article))
        .route("/articles/{slug}/gift", web::post().to(pages::gift))
        .route("/articles/{slug}/seat", web::post().to(pages::seat))
        .route("/signin", page(pages::signin_form))
        .route("/signin", web::post().to(pages::signin))
        .route("/register", page(pages::register_form))
        .route("/register", web::post().to(pages::register))
        .route("/signout", web::post().to(pages::signout))
        .route("/reset-password", page(account::forgot_form))
        .route("/reset-password", web::post().to(account::forgot))
        .route("/reset-password/{token}", page(account::reset_form))
        .route("/reset-password/{token}", web::post().to(account::reset))
        .route("/subscribe", page(account::subscribe_page))
        .route("/subscribe", web::post().to(account::subscribe))
        .route("/account", page(account::account_page))
        .route(
            "/account/sessions",
            web::post().to(account::sign_out_everywhere),
        )
        .route("/assets/site.css", page(stylesheet));
}

/// A page's route: GET, and HEAD as GET (link checkers and crawlers ask HEAD; the
/// server sends the headers without the body).
fn page<F, Args>(handler: F) -> actix_web::Route
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    web::route()
        .guard(actix_web::guard::Any(actix_web::guard::Get()).or(actix_web::guard::Head()))
        .to(handler)
}

/// What answers a path no route has: the HTML 404 page for a person when the site is
/// on, else (and under `/v1/`) the API's problem+json.
pub async fn fallback(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    if state.settings.site && !req.path().starts_with("/v1/") && req.path() != "/v1" {
        let visit = Visit::of(&state, &req).await;
        return visit.not_found();
    }
    actix_web::ResponseError::error_response(&ApiError::NotFound("there is nothing at this path"))
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(STYLESHEET)
}

/// One page view: who reads, in which language, and the cookies the answer must set.
pub struct Visit {
    pub caller: Caller,
    pub language: Language,
    pub t: &'static Texts,
    /// The CSRF token this browser holds, if it has a valid one (see `csrf_token`).
    csrf: Option<String>,
    cookies: Vec<Cookie<'static>>,
    secure: bool,
}

/// The chrome every page has: title, language, who is signed in, the CSRF token.
pub struct Chrome {
    pub t: &'static Texts,
    pub title: String,
    pub signed_in: bool,
    pub csrf: String,
}

impl Visit {
    /// Reads the visit from the request: the session (refreshed when its access token
    /// has run out; forgotten when it has ended), the language, the CSRF token.
    pub async fn of(state: &web::Data<AppState>, req: &HttpRequest) -> Visit {
        let secure = state.public_base.starts_with("https://");
        let language = i18n::choose(
            req.headers()
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
            state.settings.language,
        );
        let mut cookies = Vec::new();
        let session = req
            .cookie(crate::auth::identity::SESSION_COOKIE)
            .map(|c| c.value().to_string())
            .filter(|v| !v.is_empty());
        let mut caller = Caller::Anonymous;
        if let Some(token) = session {
            match resolve(state.clone(), token).await {
                Ok(account) => caller = Caller::Account(account),
                Err(_) => cookies.push(crate::routes::auth::removed_session_cookie()),
            }
        }
        if matches!(caller, Caller::Anonymous) {
            if let Some(refresh) = req.cookie(REFRESH_COOKIE).map(|c| c.value().to_string()) {
                match sessions::refresh(state, &refresh).await {
                    Ok(signed) => {
                        let access = signed.access_token.clone();
                        cookies.retain(|c| c.name() != crate::auth::identity::SESSION_COOKIE);
                        cookies.extend(signed_in_cookies(state, signed));
                        if let Ok(account) = resolve(state.clone(), access).await {
                            caller = Caller::Account(account);
                        }
                    }
                    Err(_) => cookies.push(removed(REFRESH_COOKIE)),
                }
            }
        }
        let csrf = req
            .cookie(CSRF_COOKIE)
            .map(|c| c.value().to_string())
            .filter(|token| token.len() == 43);
        Visit {
            caller,
            language,
            t: i18n::texts(language),
            csrf,
            cookies,
            secure,
        }
    }

    pub fn account(&self) -> Option<&AuthAccount> {
        match &self.caller {
            Caller::Account(account) => Some(account),
            Caller::Anonymous => None,
        }
    }

    /// The token this page's forms carry: the browser's, else a new one (and its
    /// cookie). Only pages with forms ask, so a reader who only reads gets no cookie.
    pub fn csrf_token(&mut self) -> String {
        if let Some(token) = &self.csrf {
            return token.clone();
        }
        let token = new_csrf_token();
        self.cookies.push(
            Cookie::build(CSRF_COOKIE, token.clone())
                .path("/")
                .http_only(true)
                .same_site(SameSite::Strict)
                .secure(self.secure)
                .finish(),
        );
        self.csrf = Some(token.clone());
        token
    }

    /// The chrome of a page whose only form is the signed-in reader's sign-out.
    pub fn chrome(&mut self, title: impl Into<String>) -> Chrome {
        let signed_in = self.account().is_some();
        Chrome {
            t: self.t,
            title: title.into(),
            signed_in,
            csrf: if signed_in {
                self.csrf_token()
            } else {
                String::new()
            },
        }
    }

    /// The chrome of a page with a form of its own.
    pub fn form_chrome(&mut self, title: impl Into<String>) -> Chrome {
        let csrf = self.csrf_token();
        Chrome {
            csrf,
            ..self.chrome(title)
        }
    }

    pub fn set_cookie(&mut self, cookie: Cookie<'static>) {
        self.cookies.retain(|c| c.name() != cookie.name());
        self.cookies.push(cookie);
    }

    /// An HTML answer with the page's headers: private (a page shows the reader's own
    /// meter and account), a policy that loads nothing from elsewhere and runs no
    /// script, and a referrer kept to this site (its forms' `Origin` is checked).
    pub fn page(
        self,
        status: StatusCode,
        html: impl actix_web::body::MessageBody + 'static,
    ) -> HttpResponse {
        self.page_with(status, html, "")
    }

    /// `page`, with more form targets allowed (the subscribe page's checkout links).
    pub fn page_with(
        self,
        status: StatusCode,
        html: impl actix_web::body::MessageBody + 'static,
        form_targets: &str,
    ) -> HttpResponse {
        let mut response = HttpResponse::build(status);
        response
            .content_type("text/html; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "private, no-store"))
            .insert_header((header::VARY, "Cookie, Accept-Language"))
            .insert_header((header::REFERRER_POLICY, "same-origin"))
            .insert_header((
                header::CONTENT_SECURITY_POLICY,
                format!(
                    "default-src 'none'; style-src 'self'; img-src 'self' data:; \
                     form-action 'self'{form_targets}; base-uri 'none'; frame-ancestors 'none'"
                ),
            ));
        for cookie in self.cookies {
            response.cookie(cookie);
        }
        response.body(html)
    }

    /// A redirect after a form (303: the browser follows with GET).
    pub fn redirect(self, to: &str) -> HttpResponse {
        let mut response = HttpResponse::SeeOther();
        response
            .insert_header((header::LOCATION, to))
            .insert_header((header::CACHE_CONTROL, "private, no-store"));
        for cookie in self.cookies {
            response.cookie(cookie);
        }
        response.finish()
    }

    pub fn not_found(self) -> HttpResponse {
        let t = self.t;
        pages::message(
            self,
            StatusCode::NOT_FOUND,
            t.not_found_title,
            t.not_found_text,
        )
    }

    /// The page for an error that is not the reader's to mend: its status, no detail.
    pub fn error(self, error: &ApiError) -> HttpResponse {
        let status = actix_web::ResponseError::status_code(error);
        if status == StatusCode::NOT_FOUND {
            return self.not_found();
        }
        let t = self.t;
        let mut response = pages::message(self, status, t.error_title, t.error_text);
        if let ApiError::RateLimited { retry_after_secs } = error {
            if let Ok(value) = header::HeaderValue::from_str(&retry_after_secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }

    /// Whether a form post may act: its CSRF field matches this browser's cookie, and
    /// the browser says it comes from this site.
    pub fn form_allowed(&self, req: &HttpRequest, state: &AppState, field: &str) -> bool {
        let cookie = req.cookie(CSRF_COOKIE).map(|c| c.value().to_string());
        let matches = cookie.is_some_and(|cookie| {
            cookie.len() == field.len()
                && cookie
                    .bytes()
                    .zip(field.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        let headers = req.headers();
        let origin_ok = match headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            None => true,
            Some(origin) => {
                crate::domain::origin_of(origin) == crate::domain::origin_of(&state.public_base)
            }
        };
        let site_ok = match headers.get("sec-fetch-site").map(|v| v.as_bytes()) {
            None => true,
            Some(site) => site == b"same-origin",
        };
        matches && origin_ok && site_ok
    }

    pub fn secure(&self) -> bool {
        self.secure
    }
}

fn new_csrf_token() -> String {
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn removed(name: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path("/").http_only(true).finish();
    cookie.make_removal();
    cookie
}

/// The cookies a sign-in leaves: the access token, and the refresh token that renews it.
pub fn signed_in_cookies(state: &AppState, signed: sessions::SignedIn) -> Vec<Cookie<'static>> {
    let secure = state.public_base.starts_with("https://");
    vec![
        crate::routes::auth::session_cookie(state, signed.access_token),
        Cookie::build(REFRESH_COOKIE, signed.refresh_token)
            .path("/")
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .max_age(actix_web::cookie::time::Duration::seconds(
                state.settings.refresh_token_ttl_secs,
            ))
            .finish(),
    ]
}

/// The cookies a sign-out leaves: none of the session's.
pub fn signed_out_cookies() -> Vec<Cookie<'static>> {
    vec![
        crate::routes::auth::removed_session_cookie(),
        removed(REFRESH_COOKIE),
    ]
}

/// A `next` a form may send the reader back to: a path of this site only (never
/// `//elsewhere` or an absolute URL).
pub fn local_path(next: &str) -> &str {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && !next.starts_with("/\\")
        && !next.chars().any(|c| c.is_control());
    if ok {
        next
    } else {
        "/"
    }
}

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_this_sites_paths_are_followed() {
        assert_eq!(local_path("/articles/x?gift=1"), "/articles/x?gift=1");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "",
            "x",
            "/a\nb",
        ] {
            assert_eq!(local_path(bad), "/", "{bad:?}");
        }
    }
}
