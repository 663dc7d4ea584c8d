//! Token verification with real keys: an HS256 secret, RSA and EC keys generated here, and a JWKS
//! served over HTTP by the test and rotated.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::json;

use super::*;

const SECRET: &[u8] = b"a test secret that is long enough for HS256 use";

fn now() -> i64 {
    crate::engine::retention::now_ms() / 1000
}

fn settings() -> VerifierSettings {
    VerifierSettings {
        hmac_secret: None,
        public_key_pem: None,
        jwks_url: None,
        jwks_refresh: Duration::from_secs(300),
        jwks_refetch_gap: Duration::ZERO,
        leeway_secs: 30,
        issuer: None,
        audience: None,
    }
}

fn hmac_verifier() -> Verifier {
    let settings = VerifierSettings {
        hmac_secret: Some(SECRET.to_vec()),
        ..settings()
    };
    Verifier::new(settings, Arc::default()).unwrap()
}

fn claims(exp_in: i64) -> serde_json::Value {
    json!({"sub": "u1", "name": "Ada", "iat": now(), "exp": now() + exp_in, "roles": ["moderator"]})
}

fn sign(
    alg: Algorithm,
    kid: Option<&str>,
    claims: &serde_json::Value,
    key: &EncodingKey,
) -> String {
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    encode(&header, claims, key).unwrap()
}

fn hs(claims: &serde_json::Value) -> String {
    sign(
        Algorithm::HS256,
        None,
        claims,
        &EncodingKey::from_secret(SECRET),
    )
}

struct Rsa {
    private: EncodingKey,
    public_pem: String,
}

fn rsa_key() -> Rsa {
    use rsa::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let private = rsa::RsaPrivateKey::new(&mut rand::rngs::OsRng, 2048).unwrap();
    let pem = private.to_pkcs8_pem(LineEnding::LF).unwrap();
    Rsa {
        private: EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap(),
        public_pem: private
            .to_public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

fn ec_key() -> Rsa {
    use p256::pkcs8::{EncodePrivateKey, EncodePublicKey, LineEnding};
    let secret = p256::SecretKey::random(&mut rand::rngs::OsRng);
    let pem = secret.to_pkcs8_pem(LineEnding::LF).unwrap();
    Rsa {
        private: EncodingKey::from_ec_pem(pem.as_bytes()).unwrap(),
        public_pem: secret
            .public_key()
            .to_public_key_pem(LineEnding::LF)
            .unwrap(),
    }
}

#[tokio::test]
async fn hs256_tokens_verify_and_say_who() {
    let id = hmac_verifier().verify(&hs(&claims(60))).await.unwrap();
    assert_eq!((id.sub.as_str(), id.name.as_str()), ("u1", "Ada"));
    assert!(id.is_moderator() && !id.is_admin());
    assert!(id.expires_at_ms > crate::engine::retention::now_ms());
}

#[tokio::test]
async fn every_failure_has_its_own_error() {
    let v = hmac_verifier();
    let expired = hs(&claims(-120));
    assert_eq!(v.verify(&expired).await, Err(TokenError::Expired));
    // Within the leeway, a just-expired token still counts.
    assert!(v.verify(&hs(&claims(-10))).await.is_ok());
    let mut early = claims(600);
    early["nbf"] = json!(now() + 300);
    assert_eq!(v.verify(&hs(&early)).await, Err(TokenError::NotYetValid));
    let forged = sign(
        Algorithm::HS256,
        None,
        &claims(60),
        &EncodingKey::from_secret(b"another secret, also long enough for HS256"),
    );
    assert_eq!(v.verify(&forged).await, Err(TokenError::BadSignature));
    let rsa = rsa_key();
    let rs = sign(Algorithm::RS256, None, &claims(60), &rsa.private);
    assert!(matches!(
        v.verify(&rs).await,
        Err(TokenError::WrongAlgorithm(_))
    ));
    let no_name = hs(&json!({"sub": "u1", "exp": now() + 60}));
    assert_eq!(
        v.verify(&no_name).await,
        Err(TokenError::MissingClaim("name".into()))
    );
    let no_exp = hs(&json!({"sub": "u1", "name": "Ada"}));
    assert_eq!(
        v.verify(&no_exp).await,
        Err(TokenError::MissingClaim("exp".into()))
    );
    let bad_name = hs(&json!({"sub": "u1", "name": "   ", "exp": now() + 60}));
    assert!(matches!(
        v.verify(&bad_name).await,
        Err(TokenError::BadName(_))
    ));
    assert_eq!(v.verify("not.a.token").await, Err(TokenError::Malformed));
}

#[tokio::test]
async fn none_is_never_an_algorithm() {
    use base64::Engine as _;
    let b64 = |v: serde_json::Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
    };
    let token = format!(
        "{}.{}.",
        b64(json!({"alg": "none", "typ": "JWT"})),
        b64(claims(60))
    );
    assert_eq!(
        hmac_verifier().verify(&token).await,
        Err(TokenError::WrongAlgorithm("none".into()))
    );
}

#[tokio::test]
async fn rs256_and_es256_verify_with_pem_keys_and_no_algorithm_confusion() {
    for (key, alg) in [(rsa_key(), Algorithm::RS256), (ec_key(), Algorithm::ES256)] {
        let settings = VerifierSettings {
            public_key_pem: Some(key.public_pem.clone().into_bytes()),
            ..settings()
        };
        let v = Verifier::new(settings, Arc::default()).unwrap();
        let token = sign(alg, None, &claims(60), &key.private);
        assert_eq!(v.verify(&token).await.unwrap().sub, "u1", "{alg:?}");
        // The public key used as an HMAC secret: refused, whatever the signature says.
        let confused = sign(
            Algorithm::HS256,
            None,
            &claims(60),
            &EncodingKey::from_secret(key.public_pem.as_bytes()),
        );
        assert!(matches!(
            v.verify(&confused).await,
            Err(TokenError::WrongAlgorithm(_))
        ));
        let other = if alg == Algorithm::RS256 {
            rsa_key()
        } else {
            ec_key()
        };
        let forged = sign(alg, None, &claims(60), &other.private);
        assert_eq!(v.verify(&forged).await, Err(TokenError::BadSignature));
    }
}

#[tokio::test]
async fn issuer_and_audience_are_checked_when_set() {
    let settings = VerifierSettings {
        hmac_secret: Some(SECRET.to_vec()),
        issuer: Some("https://id.example".into()),
        audience: Some("palaver".into()),
        ..settings()
    };
    let v = Verifier::new(settings, Arc::default()).unwrap();
    let mut right = claims(60);
    right["iss"] = json!("https://id.example");
    right["aud"] = json!("palaver");
    assert!(v.verify(&hs(&right)).await.is_ok());
    let mut wrong = right.clone();
    wrong["aud"] = json!("another-app");
    assert_eq!(
        v.verify(&hs(&wrong)).await,
        Err(TokenError::WrongIssuerOrAudience)
    );
}

#[tokio::test]
async fn revoked_users_tokens_issued_before_the_revocation_fail() {
    let revocations = Arc::new(Revocations::default());
    let settings = VerifierSettings {
        hmac_secret: Some(SECRET.to_vec()),
        ..settings()
    };
    let v = Verifier::new(settings, revocations.clone()).unwrap();
    let changes = revocations.subscribe();
    let old = hs(&claims(60));
    revocations.replace(HashMap::from([("u1".to_owned(), now() * 1000)]));
    assert!(changes.has_changed().unwrap());
    assert_eq!(v.verify(&old).await, Err(TokenError::Revoked));
    let mut newer = claims(60);
    newer["iat"] = json!(now() + 1);
    assert!(
        v.verify(&hs(&newer)).await.is_ok(),
        "a token issued after it counts"
    );
}

#[tokio::test]
async fn minted_tokens_verify() {
    let request = MintRequest {
        sub: "42".into(),
        name: "Grace".into(),
        roles: vec!["admin".into()],
        rooms: vec![],
        ttl: Duration::from_secs(3600),
    };
    let token = mint(SECRET, &request, now()).unwrap();
    let id = hmac_verifier().verify(&token).await.unwrap();
    assert_eq!(
        (id.sub.as_str(), id.name.as_str(), id.is_admin()),
        ("42", "Grace", true)
    );
    assert!(Verifier::new(
        VerifierSettings {
            hmac_secret: Some(b"short".to_vec()),
            ..settings()
        },
        Arc::default()
    )
    .is_err());
}

/// Serves `set` as a JWKS at `/jwks` on a port of its own.
async fn jwks_server(set: Arc<Mutex<JwkSet>>) -> (String, tokio::task::JoinHandle<()>) {
    let app = axum::Router::new().route(
        "/jwks",
        axum::routing::get(move || {
            let set = set.clone();
            async move { axum::Json(set.lock().unwrap().clone()) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/jwks", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, task)
}

fn jwk(key: &EncodingKey, alg: Algorithm, kid: &str) -> Jwk {
    let mut jwk = Jwk::from_encoding_key(key, alg).unwrap();
    jwk.common.key_id = Some(kid.into());
    jwk
}

#[tokio::test]
async fn a_jwks_is_fetched_and_a_rotation_is_followed() {
    let (first, second) = (rsa_key(), ec_key());
    let set = Arc::new(Mutex::new(JwkSet {
        keys: vec![jwk(&first.private, Algorithm::RS256, "k1")],
    }));
    let (url, server) = jwks_server(set.clone()).await;
    let settings = VerifierSettings {
        jwks_url: Some(url),
        ..settings()
    };
    let v = Verifier::new(settings, Arc::default()).unwrap();
    let one = sign(Algorithm::RS256, Some("k1"), &claims(60), &first.private);
    assert!(v.verify(&one).await.is_ok());
    let two = sign(Algorithm::ES256, Some("k2"), &claims(60), &second.private);
    assert_eq!(v.verify(&two).await, Err(TokenError::UnknownKey));
    // The provider rotates: k2 in, k1 out.
    *set.lock().unwrap() = JwkSet {
        keys: vec![jwk(&second.private, Algorithm::ES256, "k2")],
    };
    assert!(
        v.verify(&two).await.is_ok(),
        "an unknown key id fetches the set again"
    );
    assert_eq!(v.verify(&one).await, Err(TokenError::UnknownKey));
    server.abort();
}

#[tokio::test]
async fn an_unreachable_jwks_says_so() {
    let port = testkit::free_port();
    let settings = VerifierSettings {
        jwks_url: Some(format!("http://127.0.0.1:{port}/jwks")),
        ..settings()
    };
    let v = Verifier::new(settings, Arc::default()).unwrap();
    let key = rsa_key();
    let token = sign(Algorithm::RS256, Some("k1"), &claims(60), &key.private);
    assert_eq!(v.verify(&token).await, Err(TokenError::KeysUnavailable));
}
