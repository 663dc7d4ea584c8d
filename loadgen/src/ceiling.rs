//! The ceiling: the simplest WebSocket broadcaster we can write with the same libraries. No JSON,
//! no storage, no acknowledgements: every text frame a client sends to `/<room>` goes, as the same
//! bytes, to everyone connected to that room (the sender included). What Palaver achieves is
//! reported as a fraction of what this does on the same machine in the same run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

type Rooms = Arc<Mutex<HashMap<String, broadcast::Sender<Message>>>>;

/// A listening socket with the accept backlog Palaver asks for (`TcpListener::bind` asks for
/// 128, which a burst of a thousand clients overflows).
pub fn listen(bind: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if bind.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(bind)?;
    socket.listen(4096)
}

/// Serves until the process is killed.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let rooms: Rooms = Arc::default();
    loop {
        let (stream, _) = listener.accept().await?;
        let rooms = rooms.clone();
        tokio::spawn(async move {
            let _ = connection(stream, rooms).await;
        });
    }
}

async fn connection(stream: TcpStream, rooms: Rooms) -> Result<(), Box<dyn std::error::Error>> {
    let _ = stream.set_nodelay(true);
    let mut path = String::new();
    // The same buffers Palaver uses, so idle memory compares like with like, and writes are
    // batched (fed, then flushed once) as Palaver's are.
    let config = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(32 * 1024);
    // The callback's error type is tungstenite's; it never fails here.
    #[allow(clippy::result_large_err)]
    let remember_path = |req: &Request, resp: Response| {
        path = req.uri().path().to_owned();
        Ok(resp)
    };
    let ws = tokio_tungstenite::accept_hdr_async_with_config(stream, remember_path, Some(config))
        .await?;
    let room = {
        let mut rooms = rooms.lock().unwrap_or_else(|p| p.into_inner());
        rooms
            .entry(path)
            .or_insert_with(|| broadcast::channel(4096).0)
            .clone()
    };
    let mut live = room.subscribe();
    let (mut sink, mut stream) = ws.split();
    loop {
        tokio::select! {
            frame = stream.next() => match frame {
                Some(Ok(msg @ Message::Text(_))) => { let _ = room.send(msg); }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return Ok(()),
                Some(Ok(_)) => {}
            },
            out = live.recv() => match out {
                Ok(msg) => {
                    sink.feed(msg).await?;
                    // Write everything already waiting with one flush.
                    while let Ok(more) = live.try_recv() {
                        sink.feed(more).await?;
                    }
                    sink.flush().await?;
                }
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
        }
    }
}
