//! The browser's calls to the server's JSON endpoints (hydrate only): signing in with a sign-in
//! link's token and out, changing a room's rules, moderating, and the owner keys of rooms this
//! browser created.

use gloo_net::http::{Request, RequestBuilder, Response};

use crate::account::{ApiError, SignInRequest, Viewer};
use crate::moderation::{ModerationRequest, ModerationView};
use crate::rules::{Audience, RoomRules};

/// Where the owner key of a room this browser created is kept.
fn owner_key_name(room: &str) -> String {
    format!("palaver.owner.{room}")
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// The owner key this browser keeps for `room`, if it created it.
pub fn owner_key(room: &str) -> Option<String> {
    local_storage()?
        .get_item(&owner_key_name(room))
        .ok()
        .flatten()
}

/// Makes and keeps an owner key for a room this browser is creating.
pub fn new_owner_key(room: &str) -> Option<String> {
    let key = crate::browser::private_room_id()?[..32].to_owned();
    local_storage()?
        .set_item(&owner_key_name(room), &key)
        .ok()?;
    Some(key)
}

/// The server's words for a failed call, or a plain fallback.
async fn failure(response: Response) -> String {
    match response.json::<ApiError>().await {
        Ok(e) => e.error,
        Err(_) => format!("The server answered {}.", response.status()),
    }
}

const OFFLINE: &str = "The server cannot be reached. Check your connection and try again.";

/// Exchanges a sign-in token for the session cookie.
pub async fn sign_in(token: &str) -> Result<Viewer, String> {
    let request = Request::post("/api/session")
        .json(&SignInRequest {
            token: token.to_owned(),
        })
        .map_err(|e| e.to_string())?;
    let response = request.send().await.map_err(|_| OFFLINE.to_owned())?;
    if response.ok() {
        response
            .json::<Viewer>()
            .await
            .map_err(|_| "The server's answer could not be read.".to_owned())
    } else {
        Err(failure(response).await)
    }
}

/// Removes the session cookie.
pub async fn sign_out() -> Result<(), String> {
    let response = Request::post("/api/session/end")
        .send()
        .await
        .map_err(|_| OFFLINE.to_owned())?;
    if response.ok() {
        Ok(())
    } else {
        Err(failure(response).await)
    }
}

/// What a room's owner sets.
#[derive(serde::Serialize)]
struct RulesUpdate<'a> {
    read: Audience,
    post: Audience,
    members: &'a [String],
    member_roles: &'a [String],
    slow_mode_secs: u32,
}

/// Changes a room's rules (as its owner or an admin); the rules as stored.
pub async fn set_rules(room: &str, rules: &RoomRules) -> Result<RoomRules, String> {
    let update = RulesUpdate {
        read: rules.read,
        post: rules.post,
        members: &rules.members,
        member_roles: &rules.member_roles,
        slow_mode_secs: rules.slow_mode_secs,
    };
    let mut request = Request::put(&format!("/api/rooms/{room}/rules"));
    if let Some(key) = owner_key(room) {
        request = request.header("x-owner-key", &key);
    }
    let response = request
        .json(&update)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|_| OFFLINE.to_owned())?;
    if response.ok() {
        response
            .json::<RoomRules>()
            .await
            .map_err(|_| "The server's answer could not be read.".to_owned())
    } else {
        Err(failure(response).await)
    }
}

/// The token and the page to go to next, from a sign-in link's fragment
/// (`#token=…&next=/r/room`), and removes the fragment from the address bar and history. `next`
/// is kept only if it is a path on this site.
pub fn take_sign_in_fragment() -> (Option<String>, Option<String>) {
    let Some(window) = web_sys::window() else {
        return (None, None);
    };
    let hash = window.location().hash().unwrap_or_default();
    if let Ok(history) = window.history() {
        let path = window
            .location()
            .pathname()
            .unwrap_or_else(|_| "/signin".into());
        let _ = history.replace_state_with_url(&wasm_bindgen::JsValue::NULL, "", Some(&path));
    }
    let mut token = None;
    let mut next = None;
    for pair in hash.trim_start_matches('#').split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value = js_sys::decode_uri_component(value)
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default();
        match key {
            "token" if !value.is_empty() => token = Some(value),
            "next"
                if value.starts_with('/') && !value.starts_with("//") && !value.contains('\\') =>
            {
                next = Some(value)
            }
            _ => {}
        }
    }
    (token, next)
}

/// Goes to `path`, replacing the current page in history.
pub fn go(path: &str) {
    if let Some(window) = web_sys::window() {
        let _ = window.location().replace(path);
    }
}

/// Reloads the page (after signing out: everything it shows was for the signed-in person).
pub fn reload() {
    if let Some(window) = web_sys::window() {
        let _ = window.location().reload();
    }
}

/// A moderation call: with the owner key if this browser created the room.
fn moderation_request(request: RequestBuilder, room: &str) -> RequestBuilder {
    match owner_key(room) {
        Some(key) => request.header("x-owner-key", &key),
        None => request,
    }
}

async fn moderation_answer(response: Response) -> Result<ModerationView, String> {
    if response.ok() {
        response
            .json::<ModerationView>()
            .await
            .map_err(|_| "The server's answer could not be read.".to_owned())
    } else {
        Err(failure(response).await)
    }
}

/// The room's mutes and bans in force and its audit log (moderators only).
pub async fn moderation(room: &str) -> Result<ModerationView, String> {
    let request = moderation_request(Request::get(&format!("/api/rooms/{room}/moderation")), room);
    let response = request.send().await.map_err(|_| OFFLINE.to_owned())?;
    moderation_answer(response).await
}

/// Mutes, bans, kicks or purges someone, or lifts a mute or ban; the panel's view after it.
pub async fn moderate(room: &str, request: &ModerationRequest) -> Result<ModerationView, String> {
    let call = moderation_request(
        Request::post(&format!("/api/rooms/{room}/moderation")),
        room,
    );
    let response = call
        .json(request)
        .map_err(|e| e.to_string())?
        .send()
        .await
        .map_err(|_| OFFLINE.to_owned())?;
    moderation_answer(response).await
}
