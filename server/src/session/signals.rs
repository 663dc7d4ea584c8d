//! What a live session waits for besides its socket and its room, as futures that stay
//! registered from one turn of its loop to the next. `watch::Receiver::changed()` and
//! `CancellationToken::cancelled()` made anew in every turn would each register with their
//! (shared) notifier and unregister again, taking its lock twice a turn; a room of 1,000 turns
//! a thousand loops per message. Made once, they register once.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::sync::watch;
use tokio_util::sync::ReusableBoxFuture;

/// The changes of a watched value, as a stream of "changed" that never ends: once its sender
/// is gone it stays pending (whatever ends the session then, shutdown, comes from elsewhere).
pub(super) struct Changes<T> {
    waiting: ReusableBoxFuture<'static, (bool, watch::Receiver<T>)>,
}

/// Waits for the next change; `false` when the sender is gone.
async fn next_change<T: Send + Sync>(mut rx: watch::Receiver<T>) -> (bool, watch::Receiver<T>) {
    let changed = rx.changed().await.is_ok();
    (changed, rx)
}

impl<T: Send + Sync + 'static> Changes<T> {
    /// Changes after the value `rx` has seen (the receiver is a clone: the caller keeps its own
    /// for reading).
    pub(super) fn new(rx: watch::Receiver<T>) -> Self {
        Self {
            waiting: ReusableBoxFuture::new(next_change(rx)),
        }
    }

    /// Resolves at the next change.
    pub(super) fn changed(&mut self) -> ChangedFuture<'_, T> {
        ChangedFuture(self)
    }
}

/// [`Changes::changed`]'s future; dropping it keeps the registration.
pub(super) struct ChangedFuture<'a, T>(&'a mut Changes<T>);

impl<T: Send + Sync + 'static> Future for ChangedFuture<'_, T> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let changes = &mut *self.get_mut().0;
        let (changed, rx) = ready!(changes.waiting.poll(cx));
        if !changed {
            // The sender is gone: put the spent receiver back and stay pending for good.
            changes.waiting.set(async move {
                std::future::pending::<()>().await;
                (false, rx)
            });
            return Poll::Pending;
        }
        changes.waiting.set(next_change(rx));
        Poll::Ready(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn each_change_is_seen_and_a_gone_sender_stays_pending() {
        let (tx, rx) = watch::channel(0);
        let mut changes = Changes::new(rx.clone());
        let idle = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
        assert!(idle.is_err(), "nothing changed yet");
        tx.send_replace(1);
        changes.changed().await;
        assert_eq!(*rx.borrow(), 1, "the caller's receiver reads the value");
        tx.send_replace(2);
        tx.send_replace(3);
        changes.changed().await;
        let again = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
        assert!(again.is_err(), "two changes before a turn are one");
        drop(tx);
        let gone = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
        assert!(gone.is_err(), "a gone sender never resolves");
    }
}
