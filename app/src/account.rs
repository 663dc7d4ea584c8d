//! Who is reading: the server's sign-in mode and the verified person behind the session cookie, for
//! pages (the [`load_account`] server function, answered by the server through [`ssr::AccountSource`]),
//! and the JSON the sign-in endpoints speak.

use leptos::prelude::*;
use serde::{Deserialize, Serialize};

/// The server's `--auth` mode, as pages need it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignIn {
    /// Everyone is a guest.
    #[default]
    Off,
    /// Guests and verified people.
    Optional,
    /// Only verified people post (guests may read if `guests_read`).
    Required,
}

/// A verified person, as their token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Viewer {
    pub name: String,
    pub user_id: String,
    #[serde(default)]
    pub roles: Vec<String>,
    /// When the sign-in ends, ms since the epoch.
    pub expires_at_ms: i64,
}

impl Viewer {
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == "admin")
    }

    pub fn is_moderator(&self) -> bool {
        self.is_admin() || self.roles.iter().any(|r| r == "moderator")
    }
}

/// What a page knows about its reader.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub mode: SignIn,
    /// Under `required`: whether guests may read.
    #[serde(default)]
    pub guests_read: bool,
    /// Where people get a sign-in link (`--auth-signin-url`), if the server says.
    #[serde(default)]
    pub signin_url: Option<String>,
    /// The verified person, if the session cookie holds a valid token.
    #[serde(default)]
    pub viewer: Option<Viewer>,
    /// Why the session cookie no longer counts (expired, revoked), in words for the person.
    #[serde(default)]
    pub problem: Option<String>,
}

impl Account {
    /// Whether this reader may post under the server's mode (room rules aside).
    pub fn may_post(&self) -> bool {
        self.viewer.is_some() || self.mode != SignIn::Required
    }
}

/// `POST /api/session`'s body: the token from a sign-in link.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SignInRequest {
    pub token: String,
}

/// What the sign-in endpoints answer with on failure.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiError {
    pub error: String,
}

/// The reader's account, read from the request's session cookie.
#[server(endpoint = "account")]
pub async fn load_account() -> Result<Account, ServerFnError> {
    let source = use_context::<ssr::AccountHandle>()
        .ok_or_else(|| ServerFnError::new("Accounts are unavailable."))?;
    let headers = use_context::<http::request::Parts>()
        .map(|parts| parts.headers)
        .unwrap_or_default();
    Ok(source.0.account(&headers).await)
}

#[cfg(feature = "ssr")]
pub mod ssr {
    //! What the app needs from the server to know its reader.

    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;

    use super::Account;

    /// Implemented by the server over its verifier.
    pub trait AccountSource: Send + Sync + 'static {
        /// The account the request's cookies prove.
        fn account<'a>(
            &'a self,
            headers: &'a http::HeaderMap,
        ) -> Pin<Box<dyn Future<Output = Account> + Send + 'a>>;
    }

    /// The context value the server provides to pages and server functions.
    #[derive(Clone)]
    pub struct AccountHandle(pub Arc<dyn AccountSource>);
}
