//! The Leptos site settings: from cargo-leptos's `LEPTOS_*` environment, or Palaver's defaults.

use std::net::SocketAddr;

use leptos::config::LeptosOptions;

/// The Leptos site settings (where the built site is, where to listen, hashed file names). Under
/// cargo-leptos (which sets `LEPTOS_OUTPUT_NAME` and the other `LEPTOS_*` variables) they come
/// from that environment, and a bad value is an error; otherwise
/// Palaver's defaults apply (site in `target/site`, listening on 127.0.0.1:3000), with
/// `LEPTOS_SITE_ROOT` and `LEPTOS_SITE_ADDR` still honoured, so the plain binary and the tests
/// run without cargo-leptos.
pub fn leptos_options() -> Result<LeptosOptions, String> {
    // Leptos's own errors do not say which variable is wrong; check the typed ones first.
    fn check<T: std::str::FromStr>(var: &str) -> Result<(), String>
    where
        T::Err: std::fmt::Display,
    {
        match std::env::var(var) {
            Ok(v) => v
                .parse::<T>()
                .map(|_| ())
                .map_err(|e| format!("{var}={v:?}: {e}")),
            Err(_) => Ok(()),
        }
    }
    check::<SocketAddr>("LEPTOS_SITE_ADDR")?;
    check::<u32>("LEPTOS_RELOAD_PORT")?;
    check::<bool>("LEPTOS_HASH_FILES")?;
    // cargo-leptos writes the hashed file names next to the binary it builds; without
    // LEPTOS_HASH_FILES, that file says whether to use them.
    let hash_file_present = || {
        std::env::current_exe()
            .ok()
            .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt").is_file()))
            .unwrap_or(false)
    };
    if std::env::var_os("LEPTOS_OUTPUT_NAME").is_some() {
        let mut options = leptos::config::get_configuration(None)
            .map(|conf| conf.leptos_options)
            .map_err(|e| e.to_string())?;
        if std::env::var_os("LEPTOS_HASH_FILES").is_none() {
            options.hash_files = hash_file_present();
        }
        return Ok(options);
    }
    let site_root = std::env::var("LEPTOS_SITE_ROOT").unwrap_or_else(|_| "target/site".into());
    let site_addr = match std::env::var("LEPTOS_SITE_ADDR") {
        Ok(addr) => addr
            .parse::<SocketAddr>()
            .map_err(|e| format!("LEPTOS_SITE_ADDR={addr:?}: {e}"))?,
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let hash_files = match std::env::var("LEPTOS_HASH_FILES") {
        Ok(v) => v
            .parse::<bool>()
            .map_err(|e| format!("LEPTOS_HASH_FILES={v:?}: {e}"))?,
        Err(_) => hash_file_present(),
    };
    Ok(LeptosOptions::builder()
        .output_name("palaver")
        .site_root(site_root)
        .site_pkg_dir("pkg")
        .site_addr(site_addr)
        .hash_files(hash_files)
        .build())
}
