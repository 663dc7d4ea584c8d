//! Property test of the room logic against a real SQLite file: any interleaving of joins, leaves,
//! sends and resends keeps sequence numbers contiguous, gives each client id one number, and
//! delivers every message exactly once, in order, to every member for as long as it is joined.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::engine::sqlite::SqliteStore;
use crate::engine::History;

/// Members are a handful of people; client ids come from a small pool so resends are common.
const PEOPLE: usize = 4;
const CLIENT_IDS: u8 = 24;

#[derive(Debug, Clone)]
enum Op {
    Join(usize),
    Leave(usize),
    /// Post (or re-post, when the id was used before) as this person.
    Send(usize, u8),
    /// Wait for every outstanding acknowledgement.
    Settle,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        2 => (0..PEOPLE).prop_map(Op::Join),
        1 => (0..PEOPLE).prop_map(Op::Leave),
        6 => (0..PEOPLE, 0..CLIENT_IDS).prop_map(|(p, id)| Op::Send(p, id)),
        1 => Just(Op::Settle),
    ]
}

/// One membership: what it was told at join, and what it has received since.
struct Member {
    head: Seq,
    live: broadcast::Receiver<Arc<Delivery>>,
    _membership: Membership,
    received: Vec<Seq>,
}

impl Member {
    /// Takes whatever has been delivered so far.
    fn drain(&mut self) {
        while let Ok(d) = self.live.try_recv() {
            if let Some(seq) = d.seq {
                self.received.push(seq);
            }
        }
    }

    /// Exactly the messages committed while joined, each once and in order.
    fn check(&self, upto: Seq) -> Result<(), TestCaseError> {
        let expected: Vec<Seq> = (self.head + 1..=upto).collect();
        prop_assert_eq!(&self.received, &expected, "joined at head {}", self.head);
        Ok(())
    }
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let store =
        Arc::new(SqliteStore::open(dir.path()).map_err(|e| TestCaseError::fail(e.to_string()))?);
    let name = RoomName::parse("props").map_err(|e| TestCaseError::fail(e.to_string()))?;
    let handle = spawn_room(
        name.clone(),
        Engine::in_memory(store.clone()),
        RoomSettings::for_tests(),
        CancellationToken::new(),
        |_| {},
    );

    let mut members: Vec<Option<Member>> = (0..PEOPLE).map(|_| None).collect();
    let mut pending = Vec::new();
    let mut seq_of: BTreeMap<String, Seq> = BTreeMap::new();
    let mut left_members = Vec::new();

    for op in ops {
        match op {
            Op::Join(p) if members[p].is_none() => {
                let joined = handle.join(format!("p{p}")).await.map_err(fail)?;
                members[p] = Some(Member {
                    head: joined.head,
                    live: joined.live,
                    _membership: joined.membership,
                    received: Vec::new(),
                });
            }
            Op::Join(_) => {}
            Op::Leave(p) => {
                if let Some(mut m) = members[p].take() {
                    m.drain();
                    left_members.push(m);
                }
            }
            Op::Send(p, id) => {
                let client_id = format!("c{id}");
                let rx = handle
                    .send(format!("p{p}"), client_id.clone(), format!("text {id}"))
                    .await
                    .map_err(fail)?;
                pending.push((client_id, rx));
            }
            Op::Settle => {
                for (client_id, rx) in std::mem::take(&mut pending) {
                    record(&mut seq_of, client_id, rx).await?;
                }
            }
        }
    }
    for (client_id, rx) in std::mem::take(&mut pending) {
        record(&mut seq_of, client_id, rx).await?;
    }

    // Numbers are 1..=N, one per distinct client id, and the store holds exactly those.
    let last = seq_of.len() as Seq;
    let mut numbers: Vec<Seq> = seq_of.values().copied().collect();
    numbers.sort_unstable();
    prop_assert!(numbers.iter().copied().eq(1..=last), "{numbers:?}");
    let stored = store.after(&name, 0, 1000).await.map_err(fail)?;
    prop_assert!(stored.iter().map(|m| m.seq).eq(1..=last));
    for m in &stored {
        prop_assert_eq!(seq_of.get(&m.client_id), Some(&m.seq));
    }

    // Whoever is still joined gets everything up to the last number, once each and in order.
    for m in members.iter_mut().flatten() {
        while m.received.last().copied().unwrap_or(m.head) < last {
            match tokio::time::timeout(Duration::from_secs(5), m.live.recv()).await {
                Ok(Ok(d)) => m.received.extend(d.seq),
                other => return Err(TestCaseError::fail(format!("{other:?}"))),
            }
        }
        m.drain();
        m.check(last)?;
    }
    // Whoever left got a gapless, duplicate-free run from its join onwards.
    for m in &left_members {
        let upto = m.received.last().copied().unwrap_or(m.head);
        m.check(upto)?;
    }
    Ok(())
}

fn fail(e: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(e.to_string())
}

async fn record(
    seq_of: &mut BTreeMap<String, Seq>,
    client_id: String,
    rx: oneshot::Receiver<Result<Seq, RoomError>>,
) -> Result<(), TestCaseError> {
    let seq = rx.await.map_err(fail)?.map_err(fail)?;
    match seq_of.get(&client_id) {
        Some(&first) => prop_assert_eq!(first, seq, "a resend of {} got a new number", client_id),
        None => {
            seq_of.insert(client_id, seq);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_interleaving_keeps_numbers_contiguous_and_delivers_each_message_once(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(fail)?;
        runtime.block_on(run(ops))?;
    }
}
