//! Who is who: signed tokens (JWT) say who a person is, and nothing else does.
//!
//! - `verify.rs`: the [`Verifier`]: which keys a deployment trusts (an HS256 secret, a PEM public
//!   key, an OIDC provider's JWKS) and the checks every token passes (signature, algorithm,
//!   `exp`/`nbf` with leeway, issuer and audience when set, revocation);
//! - `jwks.rs`: a JWKS fetched over HTTP(S), cached, refreshed on a timer and when a token names a
//!   key it does not know yet (key rotation);
//! - `mint.rs`: tokens signed with the deployment's own secret (`server token`);
//! - `cookie.rs`: the browser's session cookie, which holds the token (HttpOnly);
//! - `revocations.rs`: users whose tokens issued up to a moment no longer count, on every node;
//! - `access.rs`: rooms' rules, cached, and who a person is to them.
//!
//! A verified person is an [`Identity`]; a guest has none. [`AuthMode`] says whether guests may
//! connect at all.

use std::collections::HashSet;
use std::sync::Arc;

use clap::ValueEnum;

pub mod access;
mod cookie;
mod jwks;
mod mint;
pub mod revocations;
#[cfg(test)]
mod tests;
mod verify;

pub use cookie::{clear_cookie, session_cookie, token_from_cookies, COOKIE_NAME};
pub use jwks::REFETCH_AT_MOST_EVERY;
pub use mint::{mint, MintRequest};
pub use revocations::Revocations;
pub use verify::{KeySource, Verifier, VerifierSettings};

/// Who may connect (`--auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum AuthMode {
    /// Everyone is a guest; tokens are not looked at (the default: what Palaver always did).
    #[default]
    Off,
    /// Guests and verified people side by side; a verified name is marked and protected.
    Optional,
    /// Only verified people post; guests read only if `--auth-guests-read`, else they are refused.
    Required,
}

/// What a verified token says about its holder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The stable user id (`sub`): what limits, ownership and revocation count by.
    pub sub: String,
    /// The display name (`name`, else `preferred_username`), validated like any name.
    pub name: String,
    /// `roles`: `moderator` moderates every room, `admin` also sets any room's rules.
    pub roles: Vec<String>,
    /// `rooms`: rooms the holder is a member of (for members-only rooms), normalised.
    pub rooms: HashSet<String>,
    /// `exp`, in milliseconds since the epoch: the connection ends then.
    pub expires_at_ms: i64,
    /// `iat`, in milliseconds (0 when absent): a revocation covers tokens issued up to its moment.
    pub issued_at_ms: i64,
}

impl Identity {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    /// Moderators and admins moderate every room.
    pub fn is_moderator(&self) -> bool {
        self.is_admin() || self.roles.iter().any(|r| r == "moderator")
    }
}

/// Why a token was not accepted. Each message is safe to show the person holding it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("Your sign-in has expired. Sign in again.")]
    Expired,
    #[error(
        "This sign-in link is not valid yet. Check your device's clock, or try again shortly."
    )]
    NotYetValid,
    #[error("This sign-in token's signature does not match. Ask for a new link.")]
    BadSignature,
    #[error("This sign-in token uses an algorithm this server does not accept ({0}).")]
    WrongAlgorithm(String),
    #[error("This sign-in token is signed with a key this server does not know.")]
    UnknownKey,
    #[error("This sign-in token was issued for another site.")]
    WrongIssuerOrAudience,
    #[error("This sign-in token lacks the `{0}` claim.")]
    MissingClaim(String),
    #[error("This sign-in token's name is not a usable display name: {0}")]
    BadName(String),
    #[error("This sign-in token is not a valid token.")]
    Malformed,
    #[error("Your sign-in was revoked. Sign in again.")]
    Revoked,
    #[error("This server does not accept sign-in tokens.")]
    Disabled,
    #[error("The sign-in keys cannot be fetched right now; try again shortly.")]
    KeysUnavailable,
}

impl TokenError {
    /// Whether signing in again (a fresh token) is the way out, rather than a different link.
    pub fn is_stale(&self) -> bool {
        matches!(self, TokenError::Expired | TokenError::Revoked)
    }
}

/// Everything sessions and pages need about identity; cheap to clone.
#[derive(Clone)]
pub struct Auth {
    pub mode: AuthMode,
    /// Under `required`: whether guests may read (`--auth-guests-read`).
    pub guests_read: bool,
    /// `None` when `--auth off`.
    pub verifier: Option<Arc<Verifier>>,
    /// Whether the session cookie is marked `Secure` (the public origin is https).
    pub secure_cookie: bool,
    /// Clock difference tolerated on `exp` (`--auth-leeway-secs`): a connection ends that long
    /// after its token's expiry, as verification would then refuse it.
    pub leeway: std::time::Duration,
}

impl Auth {
    /// Authentication off: everyone is a guest.
    pub fn off() -> Self {
        Self {
            mode: AuthMode::Off,
            guests_read: true,
            verifier: None,
            secure_cookie: false,
            leeway: std::time::Duration::ZERO,
        }
    }

    /// Verifies `token`, or says why not (`Disabled` when auth is off).
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        match &self.verifier {
            Some(verifier) => verifier.verify(token).await,
            None => Err(TokenError::Disabled),
        }
    }

    /// Whether a guest may connect (to read) at all.
    pub fn guests_may_connect(&self) -> bool {
        self.mode != AuthMode::Required || self.guests_read
    }

    /// Whether a guest may post.
    pub fn guests_may_post(&self) -> bool {
        self.mode != AuthMode::Required
    }
}
