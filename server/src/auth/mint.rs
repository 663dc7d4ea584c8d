//! Tokens signed with the deployment's own HS256 secret: `server token` prints one, so a small
//! deployment can hand out personal sign-in links without any other system.

use std::time::Duration;

use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::Serialize;

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct MintRequest {
    pub sub: String,
    pub name: String,
    pub roles: Vec<String>,
    pub rooms: Vec<String>,
    pub ttl: Duration,
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    name: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    rooms: &'a [String],
    iat: i64,
    exp: i64,
}

/// Signs `request` with `secret` (HS256), issued at `now_secs`.
pub fn mint(secret: &[u8], request: &MintRequest, now_secs: i64) -> Result<String, String> {
    if request.sub.is_empty() {
        return Err("--sub must not be empty".into());
    }
    app::limits::validate_display_name(&request.name).map_err(|e| format!("--name: {e}"))?;
    let ttl = i64::try_from(request.ttl.as_secs()).map_err(|_| "--ttl too long".to_owned())?;
    let claims = Claims {
        sub: &request.sub,
        name: &request.name,
        roles: &request.roles,
        rooms: &request.rooms,
        iat: now_secs,
        exp: now_secs.saturating_add(ttl),
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| e.to_string())
}
