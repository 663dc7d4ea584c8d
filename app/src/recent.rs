//! Rooms this browser visited lately, newest first, kept in the browser only (local storage):
//! the home page lists them. A private room is listed without its name on show (its address is
//! its key), as "Private room" and the time of the visit.

use serde::{Deserialize, Serialize};

/// Rooms remembered.
pub const KEPT: usize = 8;

/// One visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    pub room: String,
    pub at_ms: i64,
}

/// `visits` with `room` moved (or added) to the front, at most [`KEPT`].
pub fn record(mut visits: Vec<Visit>, room: &str, at_ms: i64) -> Vec<Visit> {
    visits.retain(|v| v.room != room);
    visits.insert(
        0,
        Visit {
            room: room.to_owned(),
            at_ms,
        },
    );
    visits.truncate(KEPT);
    visits
}

#[cfg(feature = "hydrate")]
const KEY: &str = "palaver.recent";

/// The visits this browser remembers.
#[cfg(feature = "hydrate")]
pub fn load() -> Vec<Visit> {
    web_sys::window()
        .and_then(|w| w.local_storage().ok().flatten())
        .and_then(|s| s.get_item(KEY).ok().flatten())
        .and_then(|json| serde_json::from_str(&json).ok())
        .unwrap_or_default()
}

/// Remembers a visit to `room` now.
#[cfg(feature = "hydrate")]
pub fn visited(room: &str) {
    let visits = record(load(), room, js_sys::Date::now() as i64);
    if let (Some(storage), Ok(json)) = (
        web_sys::window().and_then(|w| w.local_storage().ok().flatten()),
        serde_json::to_string(&visits),
    ) {
        let _ = storage.set_item(KEY, &json);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_latest_first_each_once_at_most_kept() {
        let mut visits = Vec::new();
        for (i, room) in ["a", "b", "a", "c"].iter().enumerate() {
            visits = super::record(visits, room, i as i64);
        }
        let rooms: Vec<&str> = visits.iter().map(|v| v.room.as_str()).collect();
        assert_eq!(rooms, ["c", "a", "b"]);
        for i in 0..20 {
            visits = super::record(visits, &format!("r{i}"), i);
        }
        assert_eq!(visits.len(), super::KEPT);
    }
}
