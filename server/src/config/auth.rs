//! Identity settings (`--auth` and its keys), and the commands that act on identities
//! (`server token`, `server revoke`).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use app::rules::Audience;

use crate::auth::{AuthMode, VerifierSettings};

/// Who may connect, and which signed tokens prove who someone is.
#[derive(Debug, Clone, Args)]
pub struct AuthArgs {
    /// Who may connect: `off` (everyone is a guest; tokens are ignored), `optional` (guests and
    /// verified people; verified names are marked and protected), `required` (only verified
    /// people post; guests may read only with --auth-guests-read).
    #[arg(long = "auth", env = "PALAVER_AUTH", value_enum, default_value_t = AuthMode::Off)]
    pub mode: AuthMode,

    /// A file holding the HS256 secret tokens are signed with (at least 32 bytes; surrounding
    /// whitespace is ignored). `server token` signs with it too.
    #[arg(
        long = "auth-secret-file",
        env = "PALAVER_AUTH_SECRET_FILE",
        global = true
    )]
    pub secret_file: Option<PathBuf>,

    /// The HS256 secret itself (instead of --auth-secret-file; environment only, so that it
    /// never shows in a process list).
    #[arg(
        long = "auth-secret",
        env = "PALAVER_AUTH_SECRET",
        hide = true,
        hide_env_values = true
    )]
    pub secret: Option<String>,

    /// A PEM public key (RSA or EC) that RS256/ES256 tokens are checked against.
    #[arg(long = "auth-public-key", env = "PALAVER_AUTH_PUBLIC_KEY")]
    pub public_key: Option<PathBuf>,

    /// Where an OIDC provider publishes its signing keys (JWKS), e.g.
    /// https://id.example.org/realms/main/protocol/openid-connect/certs. Fetched on first use,
    /// cached, fetched again after --auth-jwks-refresh-secs and when a token names an unknown key.
    #[arg(long = "auth-jwks-url", env = "PALAVER_AUTH_JWKS_URL")]
    pub jwks_url: Option<String>,

    /// Seconds fetched JWKS keys are used before they are fetched again.
    #[arg(long = "auth-jwks-refresh-secs", env = "PALAVER_AUTH_JWKS_REFRESH_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(10..=86_400))]
    pub jwks_refresh_secs: u64,

    /// Seconds of clock difference tolerated on a token's `exp` and `nbf`.
    #[arg(long = "auth-leeway-secs", env = "PALAVER_AUTH_LEEWAY_SECS", default_value_t = 60,
          value_parser = clap::value_parser!(u64).range(0..=600))]
    pub leeway_secs: u64,

    /// The `iss` every token must carry (unset: not checked).
    #[arg(long = "auth-issuer", env = "PALAVER_AUTH_ISSUER")]
    pub issuer: Option<String>,

    /// The `aud` every token must carry (unset: not checked).
    #[arg(long = "auth-audience", env = "PALAVER_AUTH_AUDIENCE")]
    pub audience: Option<String>,

    /// Where people get a sign-in link (the integrating site's sign-in page); pages link to it
    /// when someone needs to sign in.
    #[arg(long = "auth-signin-url", env = "PALAVER_AUTH_SIGNIN_URL")]
    pub signin_url: Option<String>,

    /// Under --auth required: guests may connect and read (not post).
    #[arg(long = "auth-guests-read", env = "PALAVER_AUTH_GUESTS_READ")]
    pub guests_read: bool,
}

/// Formats `server export` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// JSON Lines.
    Jsonl,
}

/// What to do instead of serving.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Print a token signed with the HS256 secret (--auth-secret-file or PALAVER_AUTH_SECRET),
    /// for a sign-in link: https://chat.example.org/signin#token=TOKEN
    Token {
        /// The user's stable id (`sub`).
        #[arg(long)]
        sub: String,
        /// The user's display name.
        #[arg(long)]
        name: String,
        /// A role (`moderator`, `admin`); repeat for several.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// A room the user is a member of (for members-only rooms); repeat for several.
        #[arg(long = "room")]
        rooms: Vec<String>,
        /// How long the token lasts, e.g. 1h, 30m, 7d.
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
    /// Revoke a user on every node: their tokens issued until now stop working and their
    /// connections close within seconds (a token issued afterwards works again).
    Revoke {
        /// The user's id (`sub`).
        #[arg(long)]
        sub: String,
        #[command(flatten)]
        via: Via,
    },
    /// Set a room's rules: who may read it and who may post in it (e.g. a read-only announcement
    /// room: --post moderators; a members-only room: --read members --member ID…).
    Rules {
        /// The room's name.
        #[arg(long)]
        room: String,
        /// Who may read: everyone, verified, members, moderators.
        #[arg(long, default_value = "everyone", value_parser = Audience::parse)]
        read: Audience,
        /// Who may post: everyone, verified, members, moderators.
        #[arg(long, default_value = "everyone", value_parser = Audience::parse)]
        post: Audience,
        /// A member's user id; repeat for several.
        #[arg(long = "member")]
        members: Vec<String>,
        /// A token role whose holders are members; repeat for several.
        #[arg(long = "member-role")]
        member_roles: Vec<String>,
        /// Slow mode: one message per person per this many seconds (0: off; moderators exempt).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=3_600))]
        slow_mode_secs: u32,
        #[command(flatten)]
        via: Via,
    },
    /// Copy the embedded database (in --data-dir) to FILE while the server keeps serving: a
    /// consistent snapshot through SQLite's online backup, never a file copy.
    Backup {
        /// Where to write the copy; must not exist yet.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Write a room's history (numbers, names, texts, times, edits and deletions as they stand)
    /// as JSON Lines, while the server keeps serving; see docs/OPERATIONS.md.
    Export {
        /// The room's name.
        #[arg(long)]
        room: String,
        /// The file's format (JSON Lines: a header line, then one entry per line).
        #[arg(long, value_enum, default_value = "jsonl")]
        format: ExportFormat,
        /// Where to write it (must not exist yet); standard output when left out.
        #[arg(long)]
        to: Option<std::path::PathBuf>,
    },
    /// Load an export into an empty room, keeping its numbers (the embedded engine: with the
    /// server stopped).
    Import {
        /// The room to fill; it must have no messages yet.
        #[arg(long)]
        room: String,
        /// A file `server export` wrote.
        #[arg(long)]
        from: std::path::PathBuf,
        /// Number from 1 when the export does not start at 1 (retention had removed the oldest
        /// messages); otherwise numbers are kept exactly.
        #[arg(long)]
        renumber: bool,
    },
    /// Put a backup in place as the database of an empty --data-dir (the server not running).
    Restore {
        /// A file `server backup` wrote.
        #[arg(long)]
        from: std::path::PathBuf,
    },
}

/// How a command reaches the rooms: through a running server's API (`--url`; needed with the
/// embedded engine while the server runs, as it holds the database), or straight through the
/// engine (`--engine`, `--data-dir`) otherwise.
#[derive(Debug, Clone, Args)]
pub struct Via {
    /// A running server's address, e.g. http://127.0.0.1:3000: the command goes through its API
    /// with an admin token (--admin-token, or one signed now with the HS256 secret).
    #[arg(long)]
    pub url: Option<String>,
    /// An admin's token for --url (default: one signed with the HS256 secret, valid one minute).
    #[arg(long, env = "PALAVER_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,
}

impl AuthArgs {
    /// The HS256 secret, from the environment or the file.
    pub fn hmac_secret(&self) -> Result<Option<Vec<u8>>, String> {
        if let Some(secret) = &self.secret {
            return Ok(Some(secret.trim().as_bytes().to_vec()));
        }
        match &self.secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim().as_bytes().to_vec()))
                .map_err(|e| format!("--auth-secret-file {}: {e}", path.display())),
            None => Ok(None),
        }
    }

    /// The keys and checks tokens are verified with.
    pub fn verifier_settings(&self) -> Result<VerifierSettings, String> {
        let public_key_pem = match &self.public_key {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| format!("--auth-public-key {}: {e}", path.display()))?,
            ),
            None => None,
        };
        Ok(VerifierSettings {
            hmac_secret: self.hmac_secret()?,
            public_key_pem,
            jwks_url: self.jwks_url.clone(),
            jwks_refresh: Duration::from_secs(self.jwks_refresh_secs),
            jwks_refetch_gap: crate::auth::REFETCH_AT_MOST_EVERY,
            leeway_secs: self.leeway_secs,
            issuer: self.issuer.clone(),
            audience: self.audience.clone(),
        })
    }
}
