//! Any bytes a client could send: decoding never panics, whatever decodes re-encodes to the same
//! frame, and whatever the validators accept obeys the rules they promise.

#![no_main]

use app::limits::{validate_client_id, validate_display_name, MessageLimits, RoomName};
use app::protocol::ClientMsg;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    // The frame decoder: a clear error or a frame that survives a round trip.
    match ClientMsg::decode(text) {
        Ok(msg) => {
            let again = ClientMsg::decode(&msg.encode()).expect("our own encoding decodes");
            assert_eq!(again, msg);
            if let ClientMsg::Send { client_id, text } = &msg {
                check_message(text);
                let _ = validate_client_id(client_id);
            }
            if let ClientMsg::Join { name, .. } = &msg {
                check_name(name);
            }
        }
        Err(e) => assert!(e.starts_with("not a valid frame")),
    }

    // The validators on the raw input too (names and room names come from URLs and forms).
    check_message(text);
    check_name(text);
    if let Ok(room) = RoomName::parse(text) {
        let again = RoomName::parse(room.as_str()).expect("a normalised room name is valid");
        assert_eq!(again.as_str(), room.as_str(), "normalising is idempotent");
        assert!(!room.as_str().is_empty());
    }
    if validate_client_id(text).is_ok() {
        assert!(text.len() <= app::limits::MAX_CLIENT_ID_BYTES);
    }
});

fn check_message(text: &str) {
    let limits = MessageLimits::default();
    if let Ok(valid) = limits.validate(text) {
        assert!(!valid.is_empty());
        assert!(valid.len() <= limits.max_bytes);
        assert!(valid.chars().count() <= limits.max_chars);
        assert!(!valid
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\t'));
        // A valid message, sent in a frame, fits under the frame cap.
        let frame = ClientMsg::Send {
            client_id: "0".repeat(app::limits::MAX_CLIENT_ID_BYTES),
            text: valid,
        }
        .encode();
        assert!(frame.len() <= limits.max_frame_bytes());
    }
}

fn check_name(name: &str) {
    if let Ok(valid) = validate_display_name(name) {
        assert!(!valid.is_empty());
        assert!(!valid.chars().any(char::is_control));
        assert_eq!(validate_display_name(&valid).ok().as_deref(), Some(valid.as_str()));
    }
}
