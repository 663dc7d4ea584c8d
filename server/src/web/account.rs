//! Signing in and out, and who a request's reader is.
//!
//! - `POST /api/session` `{"token": …}`: verifies the token (from a sign-in link's fragment) and
//!   sets the session cookie; answers the [`Viewer`].
//! - `POST /api/session/end`: removes the cookie.
//! - The `account` server function (pages): the sign-in mode and the cookie's [`Viewer`].
//!
//! Both endpoints change what the browser holds, so a request from another site is refused (its
//! `Origin` must be this site's), whatever `SameSite` already does.

use std::future::Future;
use std::pin::Pin;

use app::account::ssr::AccountSource;
use app::account::{Account, ApiError, SignIn, SignInRequest, Viewer};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;
use crate::auth::{self, Auth, AuthMode, Identity, TokenError};

/// The verified person the request's session cookie proves: `Ok(None)` for a guest (or with
/// `--auth off`), `Err` when the cookie holds a token that no longer counts.
pub async fn cookie_identity(
    auth: &Auth,
    headers: &HeaderMap,
) -> Result<Option<Identity>, TokenError> {
    if auth.mode == AuthMode::Off {
        return Ok(None);
    }
    match auth::token_from_cookies(headers) {
        Some(token) => auth.verify(&token).await.map(Some),
        None => Ok(None),
    }
}

pub fn viewer(identity: &Identity) -> Viewer {
    Viewer {
        name: identity.name.clone(),
        user_id: identity.sub.clone(),
        roles: identity.roles.clone(),
        expires_at_ms: identity.expires_at_ms,
    }
}

/// Answers the `account` server function.
pub struct Accounts {
    pub auth: Auth,
    /// `--auth-signin-url`.
    pub signin_url: Option<String>,
}

impl AccountSource for Accounts {
    fn account<'a>(
        &'a self,
        headers: &'a HeaderMap,
    ) -> Pin<Box<dyn Future<Output = Account> + Send + 'a>> {
        Box::pin(async move {
            let (viewer, problem) = match cookie_identity(&self.auth, headers).await {
                Ok(identity) => (identity.as_ref().map(viewer), None),
                Err(e) => (None, Some(e.to_string())),
            };
            Account {
                mode: match self.auth.mode {
                    AuthMode::Off => SignIn::Off,
                    AuthMode::Optional => SignIn::Optional,
                    AuthMode::Required => SignIn::Required,
                },
                guests_read: self.auth.guests_may_connect(),
                signin_url: self.signin_url.clone(),
                viewer,
                problem,
            }
        })
    }
}

fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: error.into(),
        }),
    )
        .into_response()
}

/// `POST /api/session`.
pub async fn sign_in(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<SignInRequest>,
) -> Response {
    if !state.guard.origin_allowed(&headers) {
        return refuse(StatusCode::FORBIDDEN, "Sign in from this site's own pages.");
    }
    if state.auth.mode == AuthMode::Off {
        return refuse(StatusCode::NOT_FOUND, TokenError::Disabled.to_string());
    }
    match state.auth.verify(request.token.trim()).await {
        Ok(identity) => {
            let now = crate::engine::retention::now_ms();
            let cookie = auth::session_cookie(
                request.token.trim(),
                identity.expires_at_ms,
                now,
                state.auth.secure_cookie,
            );
            (
                [
                    (header::SET_COOKIE, cookie),
                    (
                        header::CACHE_CONTROL,
                        header::HeaderValue::from_static("no-store"),
                    ),
                ],
                Json(viewer(&identity)),
            )
                .into_response()
        }
        Err(e) => refuse(StatusCode::UNAUTHORIZED, e.to_string()),
    }
}

/// `POST /api/session/end`.
pub async fn sign_out(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if !state.guard.origin_allowed(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Sign out from this site's own pages.",
        );
    }
    let cookie = auth::clear_cookie(state.auth.secure_cookie);
    (StatusCode::NO_CONTENT, [(header::SET_COOKIE, cookie)]).into_response()
}
