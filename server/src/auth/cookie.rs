//! The browser's session cookie: the verified token itself, `HttpOnly` (no script reads it),
//! `SameSite=Lax` (not sent by other sites' requests; sent when someone follows a link here),
//! `Secure` when the public origin is https, and gone when the token expires.

use axum::http::{header, HeaderMap, HeaderValue};
use cookie::{Cookie, SameSite};

/// The cookie's name.
pub const COOKIE_NAME: &str = "palaver_session";

/// The `Set-Cookie` value that keeps `token` until `expires_at_ms`.
pub fn session_cookie(token: &str, expires_at_ms: i64, now_ms: i64, secure: bool) -> HeaderValue {
    let max_age = (expires_at_ms - now_ms).max(0) / 1000;
    let cookie = Cookie::build((COOKIE_NAME, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::seconds(max_age))
        .build();
    header_value(&cookie)
}

/// The `Set-Cookie` value that removes the cookie (sign out).
pub fn clear_cookie(secure: bool) -> HeaderValue {
    let cookie = Cookie::build((COOKIE_NAME, ""))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(cookie::time::Duration::ZERO)
        .build();
    header_value(&cookie)
}

fn header_value(cookie: &Cookie<'_>) -> HeaderValue {
    // A JWT and these attributes are visible ASCII.
    HeaderValue::from_str(&cookie.to_string()).unwrap_or(HeaderValue::from_static(""))
}

/// The session token in a request's cookies, if any.
pub fn token_from_cookies(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == COOKIE_NAME && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}
