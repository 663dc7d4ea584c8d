//! The guards on their own: forwarding headers, origins, connection caps, the local rate limit.

use std::net::SocketAddr;

use axum::http::HeaderMap;

use super::*;

fn guard(trusted: &[&str], allowed: &[&str]) -> Guard {
    Guard::new(
        GuardSettings {
            posts: Budget::new(3, 10_000),
            user_posts: Budget::new(2, 60_000),
            max_connections_per_user: 2,
            joins: Budget::new(2, 60_000),
            requests: Budget::new(2, 60_000),
            reads: Budget::per_second(100, 1_000),
            ipv6_prefix_len: 64,
            trusted_proxies: trusted.iter().map(|t| t.parse().unwrap()).collect(),
            allowed_origins: allowed.iter().map(|a| a.to_string()).collect(),
            public_origins: Vec::new(),
            allowed_hosts: Vec::new(),
            max_connections_per_ip: 2,
            max_connections: 3,
            max_http_connections_per_ip: 2,
        },
        None,
        None,
        CancellationToken::new(),
    )
}

#[tokio::test]
async fn a_verified_user_has_a_post_budget_and_a_connection_cap_of_their_own() {
    let g = guard(&[], &[]);
    assert!(g.check_user_post("u1").await.is_ok());
    assert!(g.check_user_post("u1").await.is_ok());
    assert!(
        g.check_user_post("u1").await.is_err(),
        "past the burst of 2"
    );
    assert!(
        g.check_user_post("u2").await.is_ok(),
        "another user's budget is apart"
    );
    let first = g.open_user_connection("u1").await.expect("first");
    let _second = g.open_user_connection("u1").await.expect("second");
    assert!(g.open_user_connection("u1").await.is_none(), "the cap is 2");
    assert!(g.open_user_connection("u2").await.is_some());
    drop(first);
    assert!(
        g.open_user_connection("u1").await.is_some(),
        "a closed one gives its place back"
    );
}

fn key(ip: &str) -> ClientKey {
    ClientKey::new(ip.parse().unwrap(), 64)
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
    let a = key("192.0.2.1");
    let b = key("192.0.2.2");
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
    let ip = key("192.0.2.1");
    for _ in 0..3 {
        assert!(g.check_post(ip).await.is_ok());
    }
    let wait = g.check_post(ip).await.unwrap_err();
    assert!(
        wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
        "{wait:?}"
    );
    assert!(
        g.check_post(key("192.0.2.2")).await.is_ok(),
        "other addresses unaffected"
    );
}

#[test]
fn ipv6_clients_count_by_network_and_mapped_ipv4_is_ipv4() {
    let one = key("2001:db8:1:2:aaaa::1");
    assert_eq!(
        one,
        key("2001:db8:1:2:ffff:ffff:ffff:ffff"),
        "one /64, one key"
    );
    assert_ne!(
        one,
        key("2001:db8:1:3::1"),
        "the next /64 is another client"
    );
    assert_eq!(one.to_string(), "2001:db8:1:2::/64");
    assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    assert_eq!(key("192.0.2.7").to_string(), "192.0.2.7");
    assert_eq!(
        ClientKey::new("2001:db8::1".parse().unwrap(), 128).to_string(),
        "2001:db8::1"
    );
    assert_eq!(
        ClientKey::new("2001:db8:ab::1".parse().unwrap(), 48).to_string(),
        "2001:db8:ab::/48"
    );
}

#[tokio::test]
async fn a_whole_ipv6_network_shares_one_budget() {
    let g = guard(&[], &[]);
    for host in 1..=3 {
        let address = format!("2001:db8:1:2::{host}");
        assert!(g.check_post(key(&address)).await.is_ok());
    }
    assert!(
        g.check_post(key("2001:db8:1:2::99")).await.is_err(),
        "the /64's burst is spent"
    );
    assert!(g.check_post(key("2001:db8:1:3::1")).await.is_ok());
}

#[tokio::test]
async fn forwarded_comes_before_x_forwarded_for_and_mapped_proxies_are_trusted() {
    let g = guard(&["10.0.0.1"], &[]);
    // A `[::]` listener sees an IPv4 proxy as ::ffff:10.0.0.1: still the trusted proxy.
    let proxy: SocketAddr = "[::ffff:10.0.0.1]:5000".parse().unwrap();
    let both = headers(&[
        ("x-forwarded-for", "198.51.100.1"),
        ("forwarded", "for=203.0.113.5"),
    ]);
    assert_eq!(
        g.client_ip(proxy, &both),
        "203.0.113.5".parse::<IpAddr>().unwrap()
    );
    let mapped = headers(&[("x-forwarded-for", "::ffff:198.51.100.1")]);
    assert_eq!(
        g.client_ip(proxy, &mapped),
        "198.51.100.1".parse::<IpAddr>().unwrap()
    );
}

#[tokio::test]
async fn reads_spend_many_at_once() {
    let g = guard(&[], &[]);
    let ip = key("192.0.2.1");
    assert!(g.check_reads(ip, 600).await.is_ok());
    let wait = g.check_reads(ip, 500).await.unwrap_err();
    assert!(
        wait > Duration::from_secs(0) && wait <= Duration::from_secs(1),
        "{wait:?}"
    );
    assert!(
        g.check_reads(ip, 400).await.is_ok(),
        "what is left of the burst"
    );
}

#[tokio::test]
async fn tcp_connections_are_capped_per_client_but_not_for_trusted_proxies() {
    let g = guard(&["10.0.0.1"], &[]);
    let peer = |s: &str| s.parse::<SocketAddr>().unwrap();
    let held: Vec<_> = (0..2)
        .map(|_| g.open_tcp(peer("192.0.2.1:1000")).unwrap())
        .collect();
    assert!(g.open_tcp(peer("192.0.2.1:1000")).is_none());
    assert!(
        g.open_tcp(peer("192.0.2.2:1000")).is_some(),
        "another client"
    );
    let proxied: Vec<_> = (0..10).map(|_| g.open_tcp(peer("10.0.0.1:1000"))).collect();
    assert!(
        proxied.iter().all(Option::is_some),
        "a proxy carries many clients"
    );
    drop(held);
    assert!(
        g.open_tcp(peer("192.0.2.1:1000")).is_some(),
        "closing frees the place"
    );
}

#[tokio::test]
async fn with_a_public_origin_other_origins_and_rebound_hosts_are_refused() {
    let mut settings = guard(&[], &[]).settings.as_ref().clone();
    settings.public_origins = vec!["https://chat.example.org".into()];
    settings.allowed_hosts = vec!["chat.example.org".into()];
    let g = Guard::new(settings, None, None, CancellationToken::new());
    let own = headers(&[
        ("host", "chat.example.org"),
        ("origin", "https://chat.example.org"),
    ]);
    assert!(g.origin_allowed(&own) && g.host_allowed(&own));
    // The scheme counts: a plain-http page of the same name is another origin.
    let plain = headers(&[
        ("host", "chat.example.org"),
        ("origin", "http://chat.example.org"),
    ]);
    assert!(!g.origin_allowed(&plain));
    // DNS rebinding: evil.example now resolves to this server; its pages send their own names.
    let rebound = headers(&[("host", "evil.example"), ("origin", "http://evil.example")]);
    assert!(
        !g.origin_allowed(&rebound),
        "same host as Origin is not enough"
    );
    assert!(!g.host_allowed(&rebound));
    assert!(!g.host_allowed(&HeaderMap::new()), "no Host at all");
    assert_eq!(
        origin_host("https://chat.example.org:8443/"),
        Some("chat.example.org:8443")
    );
    assert_eq!(origin_host("nonsense"), None);
}
