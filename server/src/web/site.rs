//! Where the site's static files (CSS, Wasm, JS, favicon) come from, and serving them.
//!
//! A release build carries the built site inside the binary ([`Built`], from `target/site` at
//! compile time: `cargo leptos build --release --precompress` builds the site before the
//! server), so `server` runs from any directory with no other files. The files can instead come
//! from a folder: `--site-dir`, or the folder cargo-leptos names when it runs the server
//! (`cargo leptos watch`/`serve`, unchanged), or `target/site` when the binary holds none (debug
//! builds without the `embed-site` feature read `target/site` at its compile-time path).
//!
//! Either way a file is sent as its brotli or gzip sibling when the browser accepts it (the
//! release build writes `.br`/`.gz`), with its content type and an `ETag`; `Cache-Control` comes
//! from [`super::assets`]. The page head names the hashed files (`palaver.<hash>.js`): Leptos
//! reads those names from a hash file, which here is written from the names actually being
//! served, so the page and the files always agree.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use leptos::config::LeptosOptions;
use tower::ServiceExt;
use tower_http::services::ServeDir;

/// The site as built at compile time (`target/site`); empty when it was not built first.
#[derive(rust_embed::Embed)]
#[folder = "$CARGO_MANIFEST_DIR/../target/site"]
#[allow_missing = true]
struct Built;

/// Where static files are served from.
#[derive(Debug, Clone)]
pub enum SiteFiles {
    /// Inside the binary.
    Embedded,
    /// From this folder (absolute, so the working directory does not matter).
    Folder(PathBuf),
}

impl SiteFiles {
    /// Chooses the source (see the module docs) and fits the Leptos settings to it: the folder
    /// as the site root and the hashed names of the files that will be served. Returns a warning
    /// to log when there are no built files at all (every page would load unstyled and inert).
    pub fn choose(
        site_dir: Option<&Path>,
        options: &mut LeptosOptions,
    ) -> Result<(SiteFiles, Option<String>), String> {
        let under_cargo_leptos = std::env::var_os("LEPTOS_OUTPUT_NAME").is_some();
        let files = match site_dir {
            Some(dir) => SiteFiles::Folder(given_folder(dir, options)?),
            None if under_cargo_leptos || std::env::var_os("LEPTOS_SITE_ROOT").is_some() => {
                SiteFiles::Folder(absolute(
                    Path::new(&*options.site_root),
                    "LEPTOS_SITE_ROOT",
                )?)
            }
            None if Built::get(&pkg_name(options, "css", None)).is_some()
                || find_hashes(options, embedded_names()).is_some() =>
            {
                SiteFiles::Embedded
            }
            None => SiteFiles::Folder(absolute(Path::new("target/site"), "--site-dir")?),
        };
        if let SiteFiles::Folder(dir) = &files {
            options.site_root = dir.to_string_lossy().into_owned().into();
        }
        // cargo-leptos passes its own hash file; otherwise name what is there.
        if !under_cargo_leptos {
            if let Some(hashes) = find_hashes(options, files.names()) {
                options.hash_files = true;
                options.hash_file = hash_file(&hashes)?.into();
            } else {
                options.hash_files = false;
            }
        }
        let missing = !options.hash_files
            && !files
                .names()
                .iter()
                .any(|n| *n == pkg_name(options, "wasm", None));
        let warning = (missing && !under_cargo_leptos).then(|| {
            format!(
                "no built site in {}: pages will load without their CSS and Wasm. Build it \
                 (`cargo leptos build --release --precompress`) or point --site-dir \
                 (PALAVER_SITE_DIR) at a built site",
                files.describe()
            )
        });
        Ok((files, warning))
    }

    /// Says where files come from, for the start-up log.
    pub fn describe(&self) -> String {
        match self {
            SiteFiles::Embedded if cfg!(any(not(debug_assertions), feature = "embed-site")) => {
                "the binary".into()
            }
            // rust-embed reads the files at run time in debug builds.
            SiteFiles::Embedded => "target/site (at the path this debug build was made in)".into(),
            SiteFiles::Folder(dir) => dir.display().to_string(),
        }
    }

    /// The relative names of every file, `/`-separated (`pkg/palaver.abc.js`).
    fn names(&self) -> Vec<String> {
        match self {
            SiteFiles::Embedded => embedded_names(),
            SiteFiles::Folder(dir) => std::fs::read_dir(dir.join("pkg"))
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .filter_map(|e| e.file_name().into_string().ok())
                        .map(|name| format!("pkg/{name}"))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// The response for a static file, or `None` when there is no such file (the caller then
    /// renders the app's "not found" page).
    pub async fn serve(&self, method: &Method, uri: &Uri, headers: &HeaderMap) -> Option<Response> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        match self {
            SiteFiles::Embedded => serve_embedded(uri.path(), headers),
            SiteFiles::Folder(dir) => serve_folder(dir, method, uri, headers).await,
        }
    }
}

/// `--site-dir`, which must hold a built site: it was asked for, so a wrong one stops the start.
fn given_folder(dir: &Path, options: &LeptosOptions) -> Result<PathBuf, String> {
    let setting = "--site-dir (PALAVER_SITE_DIR)";
    let dir = absolute(dir, setting)?;
    if !dir.is_dir() {
        return Err(format!("{setting}: {} is not a directory", dir.display()));
    }
    let folder = SiteFiles::Folder(dir.clone());
    let wasm = pkg_name(options, "wasm", None);
    if find_hashes(options, folder.names()).is_none() && !folder.names().contains(&wasm) {
        return Err(format!(
            "{setting}: {} holds no built site ({}/{}.<hash>.wasm); build one with \
             `cargo leptos build --release --precompress` (it goes to target/site)",
            dir.display(),
            options.site_pkg_dir.trim_matches('/'),
            options.output_name
        ));
    }
    Ok(dir)
}

fn embedded_names() -> Vec<String> {
    Built::iter().map(|n| n.into_owned()).collect()
}

fn absolute(dir: &Path, setting: &str) -> Result<PathBuf, String> {
    std::path::absolute(dir).map_err(|e| format!("{setting}: {}: {e}", dir.display()))
}

/// `pkg/palaver.css` or, with a hash, `pkg/palaver.<hash>.css`.
fn pkg_name(options: &LeptosOptions, ext: &str, hash: Option<&str>) -> String {
    let pkg = options.site_pkg_dir.trim_matches('/');
    match hash {
        Some(h) => format!("{pkg}/{}.{h}.{ext}", options.output_name),
        None => format!("{pkg}/{}.{ext}", options.output_name),
    }
}

/// The hashes in `palaver.<hash>.{js,wasm,css}` among `names`, as Leptos's hash file lists them
/// (`js: …`, `wasm: …`, `css: …`); `None` unless all three are there.
fn find_hashes(options: &LeptosOptions, names: Vec<String>) -> Option<String> {
    let prefix = format!(
        "{}/{}.",
        options.site_pkg_dir.trim_matches('/'),
        options.output_name
    );
    let hash_of = |ext: &str| {
        names.iter().find_map(|name| {
            let hash = name
                .strip_prefix(&prefix)?
                .strip_suffix(&format!(".{ext}"))?;
            (!hash.is_empty() && !hash.contains('.')).then(|| hash.to_owned())
        })
    };
    let (js, wasm, css) = (hash_of("js")?, hash_of("wasm")?, hash_of("css")?);
    Some(format!("js: {js}\nwasm: {wasm}\ncss: {css}\n"))
}

/// Writes Leptos's hash file and returns its absolute path (Leptos joins it to the binary's
/// directory, which leaves an absolute path as it is). On Linux the file is unlinked at once and
/// named through `/proc/self/fd`, so nothing is left behind and no temp-directory cleaner can
/// remove it while the server runs; elsewhere it is a named temporary file.
fn hash_file(contents: &str) -> Result<String, String> {
    static KEPT: OnceLock<tempfile::NamedTempFile> = OnceLock::new();
    let err = |e: std::io::Error| format!("writing the asset names to a temporary file: {e}");
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        static OPEN: OnceLock<std::fs::File> = OnceLock::new();
        let mut file = tempfile::tempfile().map_err(err)?;
        file.write_all(contents.as_bytes()).map_err(err)?;
        let path = format!("/proc/self/fd/{}", file.as_raw_fd());
        if std::fs::read_to_string(&path).is_ok_and(|read| read == contents) {
            let fd = file.as_raw_fd();
            if OPEN.set(file).is_ok() {
                return Ok(path);
            }
            // Chosen once per process; a second server in the same process shares the first's
            // names (tests): they are the same files.
            return OPEN
                .get()
                .map(|f| format!("/proc/self/fd/{}", f.as_raw_fd()))
                .ok_or_else(|| format!("asset names file {fd} vanished"));
        }
    }
    let mut named = tempfile::NamedTempFile::new().map_err(err)?;
    named.write_all(contents.as_bytes()).map_err(err)?;
    let kept = KEPT.get_or_init(|| named);
    Ok(kept.path().to_string_lossy().into_owned())
}

/// Whether `accept_encoding` allows `coding` (a listed, non-zero quality, or `*`).
fn accepts(headers: &HeaderMap, coding: &str) -> bool {
    let Some(value) = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    value.split(',').any(|item| {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim();
        let zero = parts.any(|p| {
            p.trim()
                .strip_prefix("q=")
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q == 0.0)
        });
        (name.eq_ignore_ascii_case(coding) || name == "*") && !zero
    })
}

/// An embedded file, as its best precompressed sibling the browser takes.
fn serve_embedded(path: &str, headers: &HeaderMap) -> Option<Response> {
    let name = path.trim_start_matches('/');
    if name.is_empty() || name.split('/').any(|part| part == "..") {
        return None;
    }
    let plain = Built::get(name)?;
    let (file, encoding) = [("br", ".br"), ("gzip", ".gz")]
        .into_iter()
        .filter(|(coding, _)| accepts(headers, coding))
        .find_map(|(coding, ext)| Built::get(&format!("{name}{ext}")).map(|f| (f, Some(coding))))
        .unwrap_or((plain.clone(), None));
    let etag = format!("\"{}\"", hex(&file.metadata.sha256_hash()[..16]));
    let mut response = if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
    {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let length = file.data.len();
        let mut r = Body::from(file.data).into_response();
        r.headers_mut()
            .insert(header::CONTENT_LENGTH, HeaderValue::from(length));
        r
    };
    let h = response.headers_mut();
    if let Ok(v) = HeaderValue::from_str(plain.metadata.mimetype()) {
        h.insert(header::CONTENT_TYPE, v);
    }
    if let Ok(v) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, v);
    }
    if let Some(coding) = encoding {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static(coding));
    }
    h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    Some(response)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A file from the site folder (`ServeDir` picks the `.br`/`.gz` sibling).
async fn serve_folder(
    dir: &Path,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Option<Response> {
    let mut forwarded = Request::builder().method(method).uri(uri);
    for name in [
        header::ACCEPT_ENCODING,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
    ] {
        if let Some(value) = headers.get(&name) {
            forwarded = forwarded.header(name, value);
        }
    }
    let forwarded = forwarded.body(Body::empty()).ok()?;
    let response = ServeDir::new(dir)
        .precompressed_br()
        .precompressed_gzip()
        .oneshot(forwarded)
        .await
        .ok()?;
    match response.status() {
        StatusCode::OK | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT => {
            Some(response.into_response())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            header::ACCEPT_ENCODING,
            HeaderValue::from_str(value).unwrap(),
        );
        h
    }

    #[test]
    fn accept_encoding_is_read_with_its_qualities() {
        assert!(accepts(&with("gzip, deflate, br, zstd"), "br"));
        assert!(accepts(&with("gzip;q=1.0, br;q=0.5"), "br"));
        assert!(!accepts(&with("gzip, br;q=0"), "br"));
        assert!(accepts(&with("*"), "gzip"));
        assert!(!accepts(&with("identity"), "gzip"));
        assert!(!accepts(&HeaderMap::new(), "br"));
    }

    #[test]
    fn hashes_are_found_only_when_all_three_files_are_there() {
        let options = LeptosOptions::builder()
            .output_name("palaver")
            .site_pkg_dir("pkg")
            .build();
        let names = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let all = names(&[
            "pkg/palaver.Ab-1.js",
            "pkg/palaver.Ab-1.js.br",
            "pkg/palaver.Cd_2.wasm",
            "pkg/palaver.Ef3.css",
            "favicon.svg",
        ]);
        assert_eq!(
            find_hashes(&options, all).as_deref(),
            Some("js: Ab-1\nwasm: Cd_2\ncss: Ef3\n")
        );
        let unhashed = names(&["pkg/palaver.js", "pkg/palaver.wasm", "pkg/palaver.css"]);
        assert_eq!(find_hashes(&options, unhashed), None);
        let no_css = names(&["pkg/palaver.a.js", "pkg/palaver.b.wasm"]);
        assert_eq!(find_hashes(&options, no_css), None);
    }

    #[test]
    fn the_hash_file_reads_back_through_its_path() {
        let path = hash_file("js: a\nwasm: b\ncss: c\n").unwrap();
        assert!(Path::new(&path).is_absolute());
        let read = std::fs::read_to_string(&path).unwrap();
        assert!(read.starts_with("js: "), "{read}");
    }
}
