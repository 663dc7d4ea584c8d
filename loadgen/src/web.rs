//! The first visit to a room page, as a browser makes it: the page and every asset it names,
//! brotli or gzip accepted, and the bytes each transfers.

use std::net::SocketAddr;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// One HTTP/1.1 GET: (status, head in lower case, body bytes), brotli or gzip accepted if asked.
pub async fn get(
    addr: SocketAddr,
    path: &str,
    compressed: bool,
) -> Result<(u16, String, Vec<u8>), String> {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| e.to_string())?;
    let accept = if compressed {
        "Accept-Encoding: br, gzip\r\n"
    } else {
        ""
    };
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no header end")?;
    let head = String::from_utf8_lossy(&raw[..split]).to_ascii_lowercase();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("no status")?;
    Ok((status, head, raw[split + 4..].to_vec()))
}

/// What a first visit transfers: (path, bytes, content encoding) for the page and each asset.
pub async fn first_visit(
    addr: SocketAddr,
    page: &str,
) -> Result<Vec<(String, usize, String)>, String> {
    let encoding = |head: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix("content-encoding:"))
            .map_or_else(|| "identity".to_owned(), |v| v.trim().to_owned())
    };
    let (status, head, body) = get(addr, page, true).await?;
    if status != 200 {
        return Err(format!("{page}: HTTP {status}"));
    }
    let mut out = vec![(page.to_owned(), body.len(), encoding(&head))];
    // The asset names are in the uncompressed page.
    let (_, _, html) = get(addr, page, false).await?;
    let html = String::from_utf8_lossy(&html);
    let mut assets: Vec<String> = html
        .split('"')
        .filter(|s| s.starts_with("/pkg/"))
        .map(str::to_owned)
        .collect();
    assets.sort();
    assets.dedup();
    for asset in assets {
        let (status, head, body) = get(addr, &asset, true).await?;
        if status != 200 {
            return Err(format!("{asset}: HTTP {status}"));
        }
        out.push((asset, body.len(), encoding(&head)));
    }
    Ok(out)
}
