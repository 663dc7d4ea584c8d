//! Changing who may do what, over HTTP:
//!
//! - `PUT /api/rooms/{room}/rules`: a room's rules, by its owner (verified, or a guest sending
//!   the room's owner key as `X-Owner-Key`) or an admin;
//! - `POST /api/admin/revoke` `{"sub": …}`: revokes a user on every node, by an admin.
//!
//! The caller proves who they are with `Authorization: Bearer <token>` (scripts, other services)
//! or the session cookie (pages; then the request must come from this site's pages).

use app::account::ApiError;
use app::limits::RoomName;
use app::rules::{Audience, RoomRules};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::AppState;
use crate::auth::{access, AuthMode, Identity};

pub(super) fn refuse(status: StatusCode, error: impl Into<String>) -> Response {
    (
        status,
        Json(ApiError {
            error: error.into(),
        }),
    )
        .into_response()
}

/// The caller's identity: a bearer token, else the session cookie (only from this site's pages).
pub(super) async fn caller(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Identity>, Response> {
    if state.auth.mode == AuthMode::Off {
        return Ok(None);
    }
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(token) = bearer {
        return match state.auth.verify(token.trim()).await {
            Ok(identity) => Ok(Some(identity)),
            Err(e) => Err(refuse(StatusCode::UNAUTHORIZED, e.to_string())),
        };
    }
    if !state.guard.origin_allowed(headers) {
        return Err(refuse(
            StatusCode::FORBIDDEN,
            "Do this from this site's own pages.",
        ));
    }
    super::account::cookie_identity(&state.auth, headers)
        .await
        .map_err(|e| refuse(StatusCode::UNAUTHORIZED, e.to_string()))
}

/// The rules a room's owner may set (the owner stays as it is).
#[derive(Debug, Deserialize)]
pub struct RulesUpdate {
    pub read: Audience,
    pub post: Audience,
    #[serde(default)]
    pub members: Vec<String>,
    #[serde(default)]
    pub member_roles: Vec<String>,
    #[serde(default)]
    pub slow_mode_secs: u32,
}

/// `PUT /api/rooms/{room}/rules`.
pub async fn set_rules(
    State(state): State<AppState>,
    Path(room): Path<String>,
    headers: HeaderMap,
    Json(update): Json<RulesUpdate>,
) -> Response {
    let Ok(room) = RoomName::parse(&room) else {
        return refuse(StatusCode::BAD_REQUEST, "That is not a room name.");
    };
    let identity = match caller(&state, &headers).await {
        Ok(identity) => identity,
        Err(response) => return response,
    };
    let current = match state.rooms.directory().rules(&room).await {
        Ok(rules) => rules.unwrap_or_default(),
        Err(_) => {
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "The rules cannot be changed right now. Try again shortly.",
            )
        }
    };
    let owner_key = headers.get("x-owner-key").and_then(|v| v.to_str().ok());
    let who = access::who(identity.as_ref(), &room, &current, owner_key);
    if !current.may_change(&who) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Only the room's owner or an admin can change its rules.",
        );
    }
    let rules = RoomRules {
        read: update.read,
        post: update.post,
        members: update.members,
        member_roles: update.member_roles,
        owner: current.owner,
        slow_mode_secs: update.slow_mode_secs,
    };
    if let Err(e) = rules.validate() {
        return refuse(StatusCode::UNPROCESSABLE_ENTITY, e);
    }
    match state.access.set_rules(&room, rules.clone()).await {
        Ok(()) => Json(rules).into_response(),
        Err(_) => refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "The rules cannot be changed right now. Try again shortly.",
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct RevokeRequest {
    pub sub: String,
}

#[derive(Debug, Serialize)]
pub struct Revoked {
    pub sub: String,
    pub revoked_at_ms: i64,
}

/// `POST /api/admin/revoke`.
pub async fn revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(request): Json<RevokeRequest>,
) -> Response {
    let Some(verifier) = state.auth.verifier.clone() else {
        return refuse(StatusCode::NOT_FOUND, "Sign-in is off on this server.");
    };
    match caller(&state, &headers).await {
        Ok(Some(identity)) if identity.is_admin() => {}
        Ok(_) => return refuse(StatusCode::FORBIDDEN, "Only an admin can revoke a user."),
        Err(response) => return response,
    }
    if request.sub.is_empty() || request.sub.len() > 255 {
        return refuse(
            StatusCode::UNPROCESSABLE_ENTITY,
            "`sub` is a user id of 1–255 bytes.",
        );
    }
    let at = crate::engine::retention::now_ms();
    let directory = state.rooms.directory();
    if directory.revoke(&request.sub, at).await.is_err() {
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "The revocation could not be stored. Try again.",
        );
    }
    // This node at once; the others within their next read.
    if let Ok(all) = directory.revocations().await {
        verifier.revocations().replace(all);
    }
    Json(Revoked {
        sub: request.sub,
        revoked_at_ms: at,
    })
    .into_response()
}
