//! The server's WebSocket against tungstenite's client over an in-memory pipe: messages both ways,
//! fragments, control frames between them, partial reads and writes, the errors the protocol
//! names, and no buffer kept once a frame is read or a flush is done.

use bytes::Bytes;
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::*;

const MAX: usize = 1024;

/// A server socket and tungstenite's client on a pipe of `capacity` bytes each way.
async fn pair(capacity: usize) -> (WebSocket<DuplexStream>, WebSocketStream<DuplexStream>) {
    let (server, client) = tokio::io::duplex(capacity);
    let client = WebSocketStream::from_raw_socket(client, Role::Client, None).await;
    (WebSocket::new(server, MAX), client)
}

/// A masked client frame, written by hand.
fn client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [1u8, 2, 3, 4];
    let mut frame = vec![first];
    match payload.len() {
        len @ 0..126 => frame.push(0x80 | len as u8),
        len => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(len as u16).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

#[tokio::test]
async fn messages_both_ways_and_nothing_kept_between_them() {
    // Room in the pipe for everything the server writes before the client reads.
    let (mut server, mut client) = pair(256 * 1024).await;
    client.send(Message::text("hello, room")).await.unwrap();
    client.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(
        server.recv().await.unwrap(),
        Received::Text("hello, room".into())
    );
    assert_eq!(server.recv().await.unwrap(), Received::Binary);
    assert_eq!(server.reader.buffered_capacity(), 0, "no read buffer kept");

    let long = "é".repeat(40_000); // 80,000 bytes: the 8-byte length form
    for text in ["short", &"x".repeat(300), &long] {
        server.queue_text(Bytes::from(text.to_owned()));
    }
    assert_eq!(server.queued_bytes(), 2 + 5 + 4 + 300 + 10 + 80_000);
    server.flush().await.unwrap();
    assert_eq!(server.queued_bytes(), 0);
    assert_eq!(server.writer.queue_capacity(), 0, "no write queue kept");
    for expected in ["short", &"x".repeat(300), &long] {
        let message = client.next().await.unwrap().unwrap();
        assert_eq!(message.into_text().unwrap().as_str(), expected);
    }
}

#[tokio::test]
async fn partial_reads_and_writes_through_a_narrow_pipe() {
    let (mut server, mut client) = pair(7).await;
    let texts: Vec<String> = (0..20)
        .map(|i| format!("message {i} {}", "y".repeat(i * 13)))
        .collect();
    let sending = async {
        for text in &texts {
            client.send(Message::text(text.clone())).await.unwrap();
        }
        client
    };
    let receiving = async {
        for text in &texts {
            assert_eq!(server.recv().await.unwrap(), Received::Text(text.clone()));
        }
        server
    };
    let (mut client, mut server) = tokio::join!(sending, receiving);

    for text in &texts {
        server.queue_text(Bytes::from(text.clone()));
    }
    let reading = async {
        for text in &texts {
            let message = client.next().await.unwrap().unwrap();
            assert_eq!(message.into_text().unwrap().as_str(), text);
        }
    };
    let (flushed, ()) = tokio::join!(server.flush(), reading);
    flushed.unwrap();
}

#[tokio::test]
async fn fragments_with_a_ping_between_them_and_the_pong() {
    let (mut server, mut client) = pair(64 * 1024).await;
    let frames = [
        Frame::message(Bytes::from_static(b"frag"), OpCode::Data(Data::Text), false),
        Frame::ping(Bytes::from_static(b"are you there")),
        Frame::message(
            Bytes::from_static(b"ment"),
            OpCode::Data(Data::Continue),
            false,
        ),
        Frame::message(
            Bytes::from_static(b"ed"),
            OpCode::Data(Data::Continue),
            true,
        ),
    ];
    for frame in frames {
        client.feed(Message::Frame(frame)).await.unwrap();
    }
    client.flush().await.unwrap();
    let ping = Received::Ping(Bytes::from_static(b"are you there"));
    assert_eq!(server.recv().await.unwrap(), ping);
    assert_eq!(
        server.recv().await.unwrap(),
        Received::Text("fragmented".into())
    );
    server.flush().await.unwrap();
    // tungstenite answers pongs itself and returns them: the server's pong carries the payload.
    let pong = client.next().await.unwrap().unwrap();
    assert_eq!(pong, Message::Pong(Bytes::from_static(b"are you there")));
}

#[tokio::test]
async fn a_close_is_echoed() {
    let (mut server, mut client) = pair(64 * 1024).await;
    let close = CloseFrame {
        code: CloseCode::Away,
        reason: "bye".into(),
    };
    client.send(Message::Close(Some(close))).await.unwrap();
    assert_eq!(server.recv().await.unwrap(), Received::Close(Some(1001)));
    server.flush().await.unwrap();
    match client.next().await {
        Some(Ok(Message::Close(Some(echo)))) => assert_eq!(echo.code, CloseCode::Away),
        other => panic!("expected the close echoed, got {other:?}"),
    }
}

#[tokio::test]
async fn a_close_with_a_reason_that_does_not_fit_is_cut_at_a_character() {
    let (mut server, mut client) = pair(64 * 1024).await;
    server.queue_close(4000, &"é".repeat(100));
    server.flush().await.unwrap();
    match client.next().await {
        Some(Ok(Message::Close(Some(close)))) => {
            assert_eq!(u16::from(close.code), 4000);
            assert_eq!(close.reason.as_str(), "é".repeat(61));
        }
        other => panic!("expected a close, got {other:?}"),
    }
}

/// Writes raw bytes as the client and returns what the server makes of them.
async fn server_reads(bytes: &[u8]) -> Result<Received, WsError> {
    let (server, mut client) = tokio::io::duplex(64 * 1024);
    let mut server = WebSocket::new(server, MAX);
    client.write_all(bytes).await.unwrap();
    server.recv().await
}

#[tokio::test]
async fn what_the_protocol_forbids_is_refused_with_its_close_code() {
    let frames = |parts: &[(u8, &[u8])]| -> Vec<u8> {
        parts
            .iter()
            .flat_map(|(first, payload)| client_frame(*first, payload))
            .collect()
    };
    let max = vec![b'a'; MAX];
    let over = vec![b'a'; MAX + 1];
    let cases: [(&str, Vec<u8>, u16); 10] = [
        ("unmasked", vec![0x81, 2, b'h', b'i'], close::PROTOCOL_ERROR),
        (
            "reserved bit",
            frames(&[(0x81 | 0x40, b"hi")]),
            close::PROTOCOL_ERROR,
        ),
        (
            "reserved opcode",
            frames(&[(0x83, b"hi")]),
            close::PROTOCOL_ERROR,
        ),
        (
            "orphan continuation",
            frames(&[(0x80, b"hi")]),
            close::PROTOCOL_ERROR,
        ),
        (
            "fragmented ping",
            frames(&[(0x09, b"hi")]),
            close::PROTOCOL_ERROR,
        ),
        (
            "two starts",
            frames(&[(0x01, b"a"), (0x81, b"b")]),
            close::PROTOCOL_ERROR,
        ),
        (
            "bad close code",
            frames(&[(0x88, &1005u16.to_be_bytes())]),
            close::PROTOCOL_ERROR,
        ),
        (
            "not UTF-8",
            frames(&[(0x81, &[0xff, 0xfe])]),
            close::INVALID_DATA,
        ),
        ("too big", frames(&[(0x81, &over)]), close::TOO_BIG),
        (
            "too big in parts",
            frames(&[(0x01, &max), (0x80, b"a")]),
            close::TOO_BIG,
        ),
    ];
    for (what, bytes, expected) in cases {
        let got = server_reads(&bytes)
            .await
            .unwrap_err()
            .close_code()
            .map(|c| c.0);
        assert_eq!(got, Some(expected), "{what}");
    }
    assert_eq!(
        server_reads(&frames(&[(0x81, &max)])).await.unwrap(),
        Received::Text("a".repeat(MAX)),
        "exactly the largest message is taken"
    );
}

#[tokio::test]
async fn a_frame_announced_large_holds_only_what_arrived() {
    let (server, mut client) = tokio::io::duplex(64 * 1024);
    let mut server = WebSocket::new(server, MAX);
    let frame = client_frame(0x81, &vec![b'a'; 1000]);
    client.write_all(&frame[..10]).await.unwrap();
    let waiting = tokio::time::timeout(std::time::Duration::from_millis(50), server.recv()).await;
    assert!(waiting.is_err(), "the frame is not complete");
    assert!(
        server.reader.buffered_capacity() < 100,
        "nothing set aside for the rest"
    );
    client.write_all(&frame[10..]).await.unwrap();
    assert_eq!(
        server.recv().await.unwrap(),
        Received::Text("a".repeat(1000))
    );
    assert_eq!(server.reader.buffered_capacity(), 0);
}

#[tokio::test]
async fn the_end_of_the_connection() {
    let (server, client) = tokio::io::duplex(1024);
    let mut server = WebSocket::new(server, MAX);
    drop(client);
    assert!(matches!(server.recv().await, Err(WsError::Closed)));
}

mod properties {
    use proptest::prelude::*;

    use super::*;

    /// Reads every message from `bytes`, written in chunks of the given sizes, until the end.
    fn read_all(bytes: Vec<u8>, chunks: Vec<usize>) -> (Vec<Received>, WsError) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let (server, mut client) = tokio::io::duplex(64 * 1024);
            let mut server = WebSocket::new(server, MAX);
            let writing = async move {
                let mut rest = &bytes[..];
                for size in chunks.into_iter().cycle() {
                    if rest.is_empty() {
                        break;
                    }
                    let (now, later) = rest.split_at(size.clamp(1, rest.len()));
                    client.write_all(now).await.unwrap();
                    rest = later;
                }
            };
            let reading = async {
                let mut received = Vec::new();
                loop {
                    match server.recv().await {
                        Ok(message) => received.push(message),
                        Err(error) => return (received, error),
                    }
                }
            };
            tokio::join!(writing, reading).1
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// Whatever arrives, the reader answers with messages then an error, never a panic.
        #[test]
        fn any_bytes_end_in_messages_then_an_error(
            bytes in proptest::collection::vec(any::<u8>(), 0..2048),
            chunks in proptest::collection::vec(1usize..64, 1..8),
        ) {
            let (_, error) = read_all(bytes, chunks);
            let _ = error.close_code();
        }

        /// Text messages, each in fragments of any sizes, arrive whole and in order however the
        /// bytes are cut into reads.
        #[test]
        fn fragmented_messages_arrive_whole(
            messages in proptest::collection::vec("[a-zé€😀 ]{0,200}", 1..8),
            fragment in 1usize..300,
            chunks in proptest::collection::vec(1usize..700, 1..8),
        ) {
            let mut bytes = Vec::new();
            for message in &messages {
                let parts: Vec<&[u8]> = message.as_bytes().chunks(fragment).collect();
                let parts = if parts.is_empty() { vec![&[][..]] } else { parts };
                for (i, part) in parts.iter().enumerate() {
                    let opcode = if i == 0 { 0x01 } else { 0x00 };
                    let fin = if i + 1 == parts.len() { 0x80 } else { 0 };
                    bytes.extend(client_frame(opcode | fin, part));
                }
            }
            let (received, error) = read_all(bytes, chunks);
            let expected: Vec<Received> =
                messages.into_iter().map(Received::Text).collect();
            prop_assert_eq!(received, expected);
            prop_assert!(matches!(error, WsError::Closed));
        }
    }
}
