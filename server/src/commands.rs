//! The commands besides serving (`server token`, `server revoke`, `server rules`, `server
//! backup`, `server restore`, and `server export`/`import` in [`crate::transfer`]): each returns
//! what to print, or a one-line error naming the setting at fault.

use std::time::Duration;

use app::limits::RoomName;
use app::rules::RoomRules;
use serde_json::json;

use crate::auth::{mint, MintRequest};
use crate::config::{Command, Config, Via};
use crate::engine;

/// Runs `command` with `config`'s settings.
pub async fn run(config: &Config, command: &Command) -> Result<String, String> {
    match command {
        Command::Token {
            sub,
            name,
            roles,
            rooms,
            ttl,
        } => {
            let request = MintRequest {
                sub: sub.clone(),
                name: name.clone(),
                roles: roles.clone(),
                rooms: rooms.clone(),
                ttl: *ttl,
            };
            sign(config, &request)
        }
        Command::Revoke { sub, via } => revoke(config, sub, via).await,
        Command::Backup { to } => {
            let dir = config.data_dir.clone();
            let to = to.clone();
            blocking(move || engine::sqlite::backup::backup(&dir, &to)).await
        }
        Command::Export {
            room,
            format: _,
            to,
        } => crate::transfer::export(config, room, to.as_deref()).await,
        Command::Import {
            room,
            from,
            renumber,
        } => crate::transfer::import(config, room, from, *renumber).await,
        Command::Restore { from } => {
            let dir = config.data_dir.clone();
            let from = from.clone();
            blocking(move || engine::sqlite::backup::restore(&from, &dir)).await
        }
        Command::Rules {
            room,
            read,
            post,
            members,
            member_roles,
            slow_mode_secs,
            via,
        } => {
            let room = RoomName::parse(room).map_err(|e| format!("--room: {e}"))?;
            let rules = RoomRules {
                read: *read,
                post: *post,
                members: members.clone(),
                member_roles: member_roles.clone(),
                owner: None,
                slow_mode_secs: *slow_mode_secs,
            };
            rules.validate()?;
            set_rules(config, &room, rules, via).await
        }
    }
}

/// Runs file work off the async runtime.
async fn blocking(
    work: impl FnOnce() -> Result<String, String> + Send + 'static,
) -> Result<String, String> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| format!("the command stopped: {e}"))?
}

fn sign(config: &Config, request: &MintRequest) -> Result<String, String> {
    let secret = config
        .auth
        .hmac_secret()?
        .ok_or("no HS256 secret: set --auth-secret-file or PALAVER_AUTH_SECRET to sign tokens")?;
    if secret.len() < 32 {
        return Err("the HS256 secret must be at least 32 bytes".into());
    }
    mint(&secret, request, crate::engine::retention::now_ms() / 1000)
}

/// An admin token for `via`: the one given, else one signed now for a minute.
fn admin_token(config: &Config, via: &Via) -> Result<String, String> {
    if let Some(token) = &via.admin_token {
        return Ok(token.clone());
    }
    sign(
        config,
        &MintRequest {
            sub: "palaver-cli".into(),
            name: "Palaver CLI".into(),
            roles: vec!["admin".into()],
            rooms: vec![],
            ttl: Duration::from_secs(60),
        },
    )
    .map_err(|e| format!("{e} (or pass --admin-token)"))
}

async fn call(
    config: &Config,
    via: &Via,
    url: &str,
    method: reqwest::Method,
    body: serde_json::Value,
) -> Result<String, String> {
    let token = admin_token(config, via)?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| e.to_string())?;
    let response = client
        .request(method, url)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .map_err(|e| format!("--url: {e}"))?;
    let status = response.status();
    let text = response.text().await.map_err(|e| e.to_string())?;
    if status.is_success() {
        Ok(text)
    } else {
        let error = serde_json::from_str::<app::account::ApiError>(&text)
            .map(|e| e.error)
            .unwrap_or(text);
        Err(format!("the server answered {status}: {error}"))
    }
}

async fn open_engine(config: &Config) -> Result<engine::Engine, String> {
    engine::open(config).await.map_err(|e| {
        let hint = match e {
            engine::OpenError::Embedded(crate::engine::sqlite::OpenError::InUse { .. }) => {
                " (a server is running on it: pass --url to go through it)"
            }
            _ => "",
        };
        format!("{e}{hint}")
    })
}

async fn revoke(config: &Config, sub: &str, via: &Via) -> Result<String, String> {
    if let Some(url) = &via.url {
        let url = format!("{}/api/admin/revoke", url.trim_end_matches('/'));
        return call(
            config,
            via,
            &url,
            reqwest::Method::POST,
            json!({ "sub": sub }),
        )
        .await;
    }
    let engine = open_engine(config).await?;
    let at = crate::engine::retention::now_ms();
    engine
        .directory
        .revoke(sub, at)
        .await
        .map_err(|e| e.to_string())?;
    Ok(json!({ "sub": sub, "revoked_at_ms": at }).to_string())
}

async fn set_rules(
    config: &Config,
    room: &RoomName,
    rules: RoomRules,
    via: &Via,
) -> Result<String, String> {
    if let Some(url) = &via.url {
        let url = format!("{}/api/rooms/{room}/rules", url.trim_end_matches('/'));
        let body = serde_json::to_value(&rules).map_err(|e| e.to_string())?;
        return call(config, via, &url, reqwest::Method::PUT, body).await;
    }
    let engine = open_engine(config).await?;
    // The owner stays.
    let current = engine
        .directory
        .rules(room)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or_default();
    let rules = RoomRules {
        owner: current.owner,
        ..rules
    };
    engine
        .directory
        .set_rules(room, &rules)
        .await
        .map_err(|e| e.to_string())?;
    serde_json::to_string(&rules).map_err(|e| e.to_string())
}
