//! An OIDC provider's signing keys (a JWKS), fetched over HTTP(S) and cached: used for
//! `--auth-jwks-refresh-secs`, then fetched again on the next token; a token naming a key id the
//! cache lacks (the provider rotated its keys) fetches at once, at most every
//! [`REFETCH_AT_MOST_EVERY`], so a flood of made-up key ids costs the provider nothing.

use std::time::Duration;

use jsonwebtoken::jwk::{JwkSet, PublicKeyUse};
use jsonwebtoken::DecodingKey;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::verify::Family;
use super::TokenError;

/// Least time between two fetches (tests shorten it).
pub const REFETCH_AT_MOST_EVERY: Duration = Duration::from_secs(10);
/// How long one fetch may take.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest JWKS accepted.
const MAX_JWKS_BYTES: usize = 256 * 1024;

struct Key {
    kid: Option<String>,
    family: Family,
    key: DecodingKey,
}

#[derive(Default)]
struct Cached {
    keys: Vec<Key>,
    /// When the keys were last fetched successfully.
    fetched: Option<Instant>,
    /// When a fetch was last tried.
    tried: Option<Instant>,
}

pub(super) struct Jwks {
    url: String,
    client: reqwest::Client,
    refresh: Duration,
    /// Least time between two fetches ([`REFETCH_AT_MOST_EVERY`]).
    refetch_gap: Duration,
    cache: Mutex<Cached>,
}

impl Jwks {
    pub(super) fn new(url: &str, refresh: Duration, refetch_gap: Duration) -> Result<Self, String> {
        let parsed = reqwest::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("{url}: expected an http(s) URL"));
        }
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            url: url.to_owned(),
            client,
            refresh,
            refetch_gap,
            cache: Mutex::default(),
        })
    }

    /// The key a token names (`kid`), or the only key of its family when it names none.
    pub(super) async fn key(
        &self,
        kid: Option<&str>,
        wanted: Family,
    ) -> Result<DecodingKey, TokenError> {
        let mut cache = self.cache.lock().await;
        let stale = cache.fetched.is_none_or(|at| at.elapsed() >= self.refresh);
        if stale {
            self.fetch(&mut cache).await;
        }
        if let Some(key) = find(&cache.keys, kid, wanted) {
            return Ok(key);
        }
        if !stale {
            // Perhaps rotated since the last fetch.
            self.fetch(&mut cache).await;
            if let Some(key) = find(&cache.keys, kid, wanted) {
                return Ok(key);
            }
        }
        match cache.fetched {
            Some(_) => Err(TokenError::UnknownKey),
            None => Err(TokenError::KeysUnavailable),
        }
    }

    /// Fetches the set unless a fetch was tried very recently; on failure the old keys stay.
    async fn fetch(&self, cache: &mut Cached) {
        if cache
            .tried
            .is_some_and(|at| at.elapsed() < self.refetch_gap)
        {
            return;
        }
        cache.tried = Some(Instant::now());
        match self.download().await {
            Ok(keys) => {
                tracing::info!(url = %self.url, keys = keys.len(), "signing keys fetched");
                cache.keys = keys;
                cache.fetched = Some(Instant::now());
            }
            Err(e) => tracing::warn!(url = %self.url, error = %e, "cannot fetch signing keys"),
        }
    }

    async fn download(&self) -> Result<Vec<Key>, String> {
        let response = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| e.to_string())?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_JWKS_BYTES as u64)
        {
            return Err("JWKS too large".into());
        }
        let body = response.bytes().await.map_err(|e| e.to_string())?;
        if body.len() > MAX_JWKS_BYTES {
            return Err("JWKS too large".into());
        }
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| e.to_string())?;
        Ok(set
            .keys
            .iter()
            .filter(|jwk| jwk.common.public_key_use != Some(PublicKeyUse::Encryption))
            .filter_map(|jwk| {
                let key = DecodingKey::from_jwk(jwk).ok()?;
                let family = match &jwk.algorithm {
                    jsonwebtoken::jwk::AlgorithmParameters::RSA(_) => Family::Rsa,
                    jsonwebtoken::jwk::AlgorithmParameters::EllipticCurve(_) => Family::Ec,
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
                    // Shared secrets have no business in a public key set.
                    jsonwebtoken::jwk::AlgorithmParameters::OctetKey(_) => return None,
                };
                Some(Key {
                    kid: jwk.common.key_id.clone(),
                    family,
                    key,
                })
            })
            .collect())
    }
}

fn find(keys: &[Key], kid: Option<&str>, wanted: Family) -> Option<DecodingKey> {
    let mut of_family = keys.iter().filter(|k| k.family == wanted);
    match kid {
        Some(kid) => of_family
            .find(|k| k.kid.as_deref() == Some(kid))
            .map(|k| k.key.clone()),
        None => {
            let first = of_family.next()?;
            // Without a key id, only an unambiguous set will do.
            of_family.next().is_none().then(|| first.key.clone())
        }
    }
}
