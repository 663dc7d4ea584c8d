//! The Content-Security-Policy every page is served with (server only).
//!
//! Message text is only ever inserted as text nodes, so it cannot become markup; the policy is the
//! second line of defence should that ever break: no script runs unless it is our own file or an
//! inline script carrying this response's nonce (Leptos puts the nonce on its hydration scripts),
//! Wasm may be compiled (`'wasm-unsafe-eval'`, not `'unsafe-eval'`), styles come only from our
//! stylesheet. The page may not be framed (clickjacking): `X-Frame-Options: DENY`.

use leptos::config::LeptosOptions;
use leptos::nonce::use_nonce;

/// The policy for a page whose inline scripts carry `nonce`. `dev_reload` is the hot-reload
/// WebSocket's port under `cargo leptos watch`, which must be reachable too.
pub fn content_security_policy(nonce: &str, dev_reload: Option<u32>) -> String {
    let reload = dev_reload
        .map(|port| format!(" ws://*:{port} wss://*:{port}"))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; font-src 'self'; \
         connect-src 'self'{reload}; manifest-src 'self'; base-uri 'none'; \
         form-action 'self'"
    )
}

/// The policy for the page being rendered, with this response's nonce (leptos_axum provides one
/// per response and puts it on its hydration scripts). The shell puts it in a
/// `<meta http-equiv>` ahead of every script: it is rendered together with those scripts, so
/// the two always agree. (Setting it as a header through `ResponseOptions` was not reliable: on
/// some responses the header was missing.) `frame-ancestors` cannot be set in a meta tag; the
/// server sends `X-Frame-Options: DENY` instead.
pub fn page_policy(options: &LeptosOptions) -> Option<String> {
    let nonce = use_nonce()?;
    let dev_reload = std::env::var_os("LEPTOS_WATCH")
        .map(|_| options.reload_external_port.unwrap_or(options.reload_port));
    Some(content_security_policy(&nonce.to_string(), dev_reload))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_only_our_scripts_and_wasm() {
        let csp = content_security_policy("abc", None);
        assert!(csp.contains("script-src 'self' 'nonce-abc' 'wasm-unsafe-eval';"));
        assert!(!csp.contains("unsafe-inline"));
        assert!(!csp.contains("'unsafe-eval'"));
        assert!(csp.contains("base-uri 'none'"));
        assert!(!csp.contains("ws://"));
        assert!(content_security_policy("abc", Some(3001)).contains("ws://*:3001"));
    }
}
