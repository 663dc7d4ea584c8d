//! The guards on their own: forwarding headers, origins, connection caps, the local rate limit.

use std::net::SocketAddr;

use axum::http::HeaderMap;

use super::*;

fn guard(trusted: &[&str], allowed: &[&str]) -> Guard {
    Guard::new(
        GuardSettings {
            posts: Budget::new(3, 10_000),
            joins: Budget::new(2, 60_000),
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            allowed_origins: allowed.iter().map(|a| a.to_string()).collect(),
            max_connections_per_ip: 2,
            max_connections: 3,
        },
        None,
        CancellationToken::new(),
    )
}

fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for (k, v) in pairs {
        h.append(
            axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
    }
    h
}

#[tokio::test]
async fn forwarding_headers_count_only_from_trusted_proxies() {
    let g = guard(&["10.0.0.1"], &[]);
    let forged = headers(&[("x-forwarded-for", "203.0.113.9")]);
    let stranger: SocketAddr = "198.51.100.7:5000".parse().unwrap();
    assert_eq!(
        g.client_ip(stranger, &forged),
        stranger.ip(),
        "forged header ignored"
    );
    let proxy: SocketAddr = "10.0.0.1:5000".parse().unwrap();
    let chain = headers(&[("x-forwarded-for", "203.0.113.9, 10.0.0.1")]);
    assert_eq!(
        g.client_ip(proxy, &chain),
        "203.0.113.9".parse::<IpAddr>().unwrap()
    );
    let fwd = headers(&[("forwarded", r#"for="[2001:db8::1]:4711";proto=https"#)]);
    assert_eq!(
        g.client_ip(proxy, &fwd),
        "2001:db8::1".parse::<IpAddr>().unwrap()
    );
    assert_eq!(
        g.client_ip(proxy, &HeaderMap::new()),
        proxy.ip(),
        "no header: the proxy itself"
    );
}

#[tokio::test]
async fn origins() {
    let g = guard(&[], &["https://chat.example.org"]);
    let same = headers(&[
        ("host", "127.0.0.1:3000"),
        ("origin", "http://127.0.0.1:3000"),
    ]);
    assert!(g.origin_allowed(&same));
    let allowed = headers(&[
        ("host", "internal:3000"),
        ("origin", "https://chat.example.org"),
    ]);
    assert!(g.origin_allowed(&allowed));
    let evil = headers(&[
        ("host", "127.0.0.1:3000"),
        ("origin", "https://evil.example"),
    ]);
    assert!(!g.origin_allowed(&evil));
    assert!(
        g.origin_allowed(&headers(&[("host", "127.0.0.1:3000")])),
        "no Origin: not a browser"
    );
}

#[tokio::test]
async fn connections_are_capped_per_address_and_in_total() {
    let g = guard(&[], &[]);
    let a: IpAddr = "192.0.2.1".parse().unwrap();
    let b: IpAddr = "192.0.2.2".parse().unwrap();
    let a1 = g.open_connection(a).unwrap();
    let _a2 = g.open_connection(a).unwrap();
    assert_eq!(
        g.open_connection(a).err(),
        Some(ConnectionRefused::PerAddress)
    );
    let _b1 = g.open_connection(b).unwrap();
    assert_eq!(
        g.open_connection(b).err(),
        Some(ConnectionRefused::ServerFull)
    );
    drop(a1);
    assert!(
        g.open_connection(b).is_ok(),
        "a closed connection frees its place"
    );
}

#[tokio::test]
async fn burst_then_wait() {
    let g = guard(&[], &[]);
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    for _ in 0..3 {
        assert!(g.check_post(ip).await.is_ok());
    }
    let wait = g.check_post(ip).await.unwrap_err();
    assert!(
        wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
        "{wait:?}"
    );
    assert!(
        g.check_post("192.0.2.2".parse().unwrap()).await.is_ok(),
        "other addresses unaffected"
    );
}
