//! The [`Verifier`]: the keys a deployment trusts and the checks every token passes.
//!
//! The key is chosen by the token's algorithm family, never by the token alone: an HMAC token is
//! checked only against the configured secret, an RSA or EC token only against public keys (a
//! PEM file or the JWKS). So a token "signed" with the public key as an HMAC secret (algorithm
//! confusion) fails, and `none` is no algorithm at all here.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;

use super::jwks::Jwks;
use super::revocations::Revocations;
use super::{Identity, TokenError};

/// Which keys are trusted, and how strictly tokens are read (from `Config`).
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The HS256 secret (`--auth-secret-file` or `PALAVER_AUTH_SECRET`).
    pub hmac_secret: Option<Vec<u8>>,
    /// A PEM public key (RSA or EC) (`--auth-public-key`).
    pub public_key_pem: Option<Vec<u8>>,
    /// Where an OIDC provider publishes its keys (`--auth-jwks-url`).
    pub jwks_url: Option<String>,
    /// How long fetched keys are used before they are fetched again (`--auth-jwks-refresh-secs`).
    pub jwks_refresh: Duration,
    /// Least time between two JWKS fetches (10 s; tests shorten it).
    pub jwks_refetch_gap: Duration,
    /// Clock difference tolerated on `exp` and `nbf` (`--auth-leeway-secs`).
    pub leeway_secs: u64,
    /// Required `iss`, if set (`--auth-issuer`).
    pub issuer: Option<String>,
    /// Required `aud`, if set (`--auth-audience`).
    pub audience: Option<String>,
}

/// Where a key may come from (for start-up errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySource {
    Secret,
    PublicKey,
    Jwks,
}

/// The kinds of keys; a token's algorithm picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Family {
    Hmac,
    Rsa,
    Ec,
    Ed,
}

pub(super) fn family(alg: Algorithm) -> Family {
    use Algorithm::*;
    match alg {
        HS256 | HS384 | HS512 => Family::Hmac,
        RS256 | RS384 | RS512 | PS256 | PS384 | PS512 => Family::Rsa,
        ES256 | ES384 => Family::Ec,
        EdDSA => Family::Ed,
    }
}

/// The claims Palaver reads; others are ignored.
#[derive(Debug, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    preferred_username: Option<String>,
    #[serde(default)]
    exp: Option<i64>,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    rooms: Vec<String>,
}

/// Checks tokens; shared by every session and page.
pub struct Verifier {
    hmac: Option<DecodingKey>,
    public: Option<(Family, DecodingKey)>,
    jwks: Option<Jwks>,
    leeway_secs: u64,
    issuer: Option<String>,
    audience: Option<String>,
    revocations: Arc<Revocations>,
}

impl Verifier {
    /// Builds the verifier; a key that cannot be read is a start-up error naming its setting.
    pub fn new(
        settings: VerifierSettings,
        revocations: Arc<Revocations>,
    ) -> Result<Self, (KeySource, String)> {
        let public = match &settings.public_key_pem {
            Some(pem) => Some(parse_pem(pem).map_err(|e| (KeySource::PublicKey, e))?),
            None => None,
        };
        let jwks = match &settings.jwks_url {
            Some(url) => Some(
                Jwks::new(url, settings.jwks_refresh, settings.jwks_refetch_gap)
                    .map_err(|e| (KeySource::Jwks, e))?,
            ),
            None => None,
        };
        let hmac = settings
            .hmac_secret
            .as_deref()
            .map(DecodingKey::from_secret);
        if let Some(secret) = &settings.hmac_secret {
            if secret.len() < 32 {
                return Err((
                    KeySource::Secret,
                    "the secret must be at least 32 bytes (e.g. `openssl rand -base64 48`)".into(),
                ));
            }
        }
        if hmac.is_none() && public.is_none() && jwks.is_none() {
            return Err((
                KeySource::Secret,
                "no key: set --auth-secret-file (or PALAVER_AUTH_SECRET), --auth-public-key or --auth-jwks-url".into(),
            ));
        }
        Ok(Self {
            hmac,
            public,
            jwks,
            leeway_secs: settings.leeway_secs,
            issuer: settings.issuer,
            audience: settings.audience,
            revocations,
        })
    }

    /// The identity `token` proves, or why it proves none.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let header = decode_header(token).map_err(|_| header_error(token))?;
        let key = self.key_for(header.alg, header.kid.as_deref()).await?;
        let mut validation = Validation::new(header.alg);
        validation.leeway = self.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "sub"]);
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        let claims = decode::<Claims>(token, &key, &validation)
            .map_err(|e| claim_error(e.kind()))?
            .claims;
        let identity = identity(claims)?;
        if self.revocations.is_revoked(&identity) {
            return Err(TokenError::Revoked);
        }
        Ok(identity)
    }

    async fn key_for(&self, alg: Algorithm, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        let wrong = || TokenError::WrongAlgorithm(format!("{alg:?}"));
        match family(alg) {
            Family::Hmac => self.hmac.clone().ok_or_else(wrong),
            wanted => {
                if let Some(jwks) = &self.jwks {
                    match jwks.key(kid, wanted).await {
                        Ok(key) => return Ok(key),
                        Err(e) if self.public.is_none() => return Err(e),
                        Err(_) => {}
                    }
                }
                match &self.public {
                    Some((family, key)) if *family == wanted => Ok(key.clone()),
                    Some(_) => Err(wrong()),
                    None => Err(wrong()),
                }
            }
        }
    }

    /// Whether a token's holder is revoked now (for connections that outlive a revocation).
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }
}

/// A PEM public key: RSA or EC.
fn parse_pem(pem: &[u8]) -> Result<(Family, DecodingKey), String> {
    if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        return Ok((Family::Rsa, key));
    }
    if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        return Ok((Family::Ec, key));
    }
    Err("not a PEM RSA or EC public key".into())
}

/// Why a header did not parse: an algorithm jsonwebtoken does not know (`none` above all) is
/// said as such.
fn header_error(token: &str) -> TokenError {
    let alg = token
        .split('.')
        .next()
        .and_then(|h| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .ok()
        })
        .and_then(|h| serde_json::from_slice::<serde_json::Value>(&h).ok())
        .and_then(|h| h.get("alg").and_then(|a| a.as_str()).map(str::to_owned));
    match alg {
        Some(alg) => TokenError::WrongAlgorithm(alg),
        None => TokenError::Malformed,
    }
}

fn claim_error(kind: &ErrorKind) -> TokenError {
    match kind {
        ErrorKind::ExpiredSignature => TokenError::Expired,
        ErrorKind::ImmatureSignature => TokenError::NotYetValid,
        ErrorKind::InvalidSignature => TokenError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            TokenError::WrongAlgorithm("mismatch".into())
        }
        ErrorKind::InvalidIssuer | ErrorKind::InvalidAudience => TokenError::WrongIssuerOrAudience,
        ErrorKind::MissingRequiredClaim(claim) => TokenError::MissingClaim(claim.clone()),
        _ => TokenError::Malformed,
    }
}

fn identity(claims: Claims) -> Result<Identity, TokenError> {
    let missing = |claim: &str| TokenError::MissingClaim(claim.into());
    let sub = claims
        .sub
        .filter(|s| !s.is_empty() && s.len() <= 255)
        .ok_or_else(|| missing("sub"))?;
    let exp = claims.exp.ok_or_else(|| missing("exp"))?;
    let raw = claims
        .name
        .or(claims.preferred_username)
        .ok_or_else(|| missing("name"))?;
    let name =
        app::limits::validate_display_name(&raw).map_err(|e| TokenError::BadName(e.to_string()))?;
    let small = |list: Vec<String>| list.into_iter().filter(|r| r.len() <= 255).take(100);
    Ok(Identity {
        sub,
        name,
        roles: small(claims.roles).collect(),
        rooms: small(claims.rooms)
            .filter_map(|r| app::limits::RoomName::parse(&r).ok())
            .map(|r| r.as_str().to_owned())
            .collect(),
        expires_at_ms: exp.saturating_mul(1000),
        issued_at_ms: claims.iat.unwrap_or(0).saturating_mul(1000),
    })
}
