//! Rebuilds the server when the built site changes, in the builds that carry the site inside the
//! binary (release, or the `embed-site` feature; see `src/web/site.rs`). rust-embed reads
//! `target/site` while compiling, and without this a site built after the server (or a first
//! site where there was none) would go unnoticed.

use std::path::Path;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let feature = std::env::var_os("CARGO_FEATURE_EMBED_SITE").is_some();
    if !(release || feature) {
        return;
    }
    let Ok(manifest_dir) = std::env::var("CARGO_MANIFEST_DIR") else {
        return;
    };
    let site = Path::new(&manifest_dir).join("../target/site");
    // Watching a missing path reruns every build; an empty folder is watched like a full one.
    if std::fs::create_dir_all(&site).is_ok() {
        println!("cargo:rerun-if-changed={}", site.display());
    }
}
