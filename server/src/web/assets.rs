//! How long browsers and proxies may keep what we serve (`Cache-Control`).
//!
//! - `/pkg/*` with hashed names (release builds: `palaver.<hash>.wasm`): a year, immutable; a new
//!   build has new names.
//! - `/pkg/*` without hashes (debug builds): revalidate every time, so a rebuild shows at once.
//! - Other static files (`/favicon.svg`): an hour.
//! - Pages, the API and everything else: `no-cache` (pages carry live history and a per-response
//!   CSP nonce).
//!
//! Static files are served by leptos_axum's `ServeDir`, which picks `.br`/`.gz` siblings when the
//! browser accepts them (`cargo leptos build --release --precompress` writes them) and sends
//! `application/wasm` for `.wasm`.

use axum::extract::State;
use axum::http::{header, HeaderValue, Uri};
use axum::response::Response;
use leptos::config::LeptosOptions;

/// What decides the header (from the Leptos settings).
#[derive(Clone)]
pub struct CachePolicy {
    /// `/pkg/`, where the built JS, Wasm and CSS live.
    pkg_prefix: String,
    /// Whether those carry content hashes in their names.
    hashed: bool,
}

impl CachePolicy {
    pub fn new(options: &LeptosOptions) -> Self {
        Self {
            pkg_prefix: format!("/{}/", options.site_pkg_dir.trim_matches('/')),
            hashed: options.hash_files,
        }
    }

    fn header_for(&self, path: &str, is_static_file: bool) -> &'static str {
        if path.starts_with(&self.pkg_prefix) && is_static_file {
            if self.hashed {
                "public, max-age=31536000, immutable"
            } else {
                "no-cache"
            }
        } else if is_static_file {
            "public, max-age=3600"
        } else {
            "no-cache"
        }
    }
}

/// Adds `Cache-Control` to a response unless the handler set one.
pub async fn cache_control(
    State(policy): State<CachePolicy>,
    uri: Uri,
    mut response: Response,
) -> Response {
    if response.headers().contains_key(header::CACHE_CONTROL) {
        return response;
    }
    let path = uri.path();
    // Files have an extension; pages (`/`, `/r/<room>`) and the API do not look like files.
    let is_static_file = response.status().is_success()
        && !path.starts_with("/api/")
        && path
            .rsplit('/')
            .next()
            .is_some_and(|name| name.contains('.'));
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(policy.header_for(path, is_static_file)),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_assets_are_immutable_and_pages_are_not_cached() {
        let hashed = CachePolicy {
            pkg_prefix: "/pkg/".into(),
            hashed: true,
        };
        assert_eq!(
            hashed.header_for("/pkg/palaver.abc123.wasm", true),
            "public, max-age=31536000, immutable"
        );
        assert_eq!(
            hashed.header_for("/favicon.svg", true),
            "public, max-age=3600"
        );
        assert_eq!(hashed.header_for("/r/general", false), "no-cache");
        let plain = CachePolicy {
            pkg_prefix: "/pkg/".into(),
            hashed: false,
        };
        assert_eq!(plain.header_for("/pkg/palaver.wasm", true), "no-cache");
    }
}
