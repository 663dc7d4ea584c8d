//! [`SharedPresence`] on Redis: per room a hash (`roster`) from node id to that node's people
//! (JSON) and its lease, written and read by scripts on Redis's clock
//! (`scripts/share_roster.lua`, `scripts/remote_roster.lua`), so node clocks do not matter. A
//! change is announced on the room's channel (`r<node>`).

use app::limits::RoomName;
use futures::future::BoxFuture;

use super::connection::timed;
use super::RedisEngine;
use crate::engine::{EngineError, Roster, SharedPresence, ROSTER_LEASE};

impl SharedPresence for RedisEngine {
    fn publish<'a>(
        &'a self,
        room: &'a RoomName,
        local: &'a Roster,
        changed: bool,
    ) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let json = if local.is_empty() {
                String::new()
            } else {
                serde_json::to_string(local).map_err(|e| EngineError::Unavailable(e.to_string()))?
            };
            let mut conn = self.conn.clone();
            let _: i64 = timed(
                self.scripts
                    .share_roster
                    .key(self.key(room, "roster"))
                    .key(self.key(room, "live"))
                    .arg(self.node_id())
                    .arg(json)
                    .arg(u64::try_from(ROSTER_LEASE.as_millis()).unwrap_or(u64::MAX))
                    .arg(if changed { "1" } else { "0" })
                    .invoke_async(&mut conn),
            )
            .await?;
            Ok(())
        })
    }

    fn others<'a>(&'a self, room: &'a RoomName) -> BoxFuture<'a, Result<Roster, EngineError>> {
        Box::pin(async move {
            let mut conn = self.conn.clone();
            let parts: Vec<String> = timed(
                self.scripts
                    .remote_roster
                    .key(self.key(room, "roster"))
                    .arg(self.node_id())
                    .invoke_async(&mut conn),
            )
            .await?;
            let mut roster = Roster::new();
            for part in parts {
                // A part another version wrote that this one cannot read is left out, not fatal.
                let Ok(names) = serde_json::from_str::<Roster>(&part) else {
                    continue;
                };
                for (name, present) in names {
                    roster.entry(name).or_default().merge(present);
                }
            }
            Ok(roster)
        })
    }
}
