//! Security events are written off the request path: handlers hand them to a bounded channel and
//! one task writes whatever has queued up in a single multi-row `INSERT`. Under load that is one
//! write for many events instead of a second write transaction per request; when idle an event
//! is written as soon as it arrives. Nothing is dropped: a full channel makes the request wait.
//! Readers ([`AuditLog::flush`]) and shutdown wait for the queue to be written first. A batch
//! that meets a database outage is held and retried until the database returns (up to a minute).

use keycard_store::{AuditEvent, Store};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Events queued before senders wait.
const QUEUE: usize = 16 * 1024;
/// Events written per statement at most.
const BATCH: usize = 512;
/// While the database is unavailable a batch is retried this often, this many times (then it is
/// given up, loudly, so a shutdown during a long outage does not hang).
const RETRY_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
const RETRIES: u32 = 60;

enum Message {
    Event(AuditEvent),
    Flush(oneshot::Sender<()>),
}

/// The sending side; cheap to clone.
#[derive(Clone, Debug)]
pub struct AuditLog {
    tx: mpsc::Sender<Message>,
}

impl AuditLog {
    /// Starts the writer task on `store`.
    pub fn start(store: Store) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (Self { tx }, tokio::spawn(write_batches(store, rx)))
    }

    /// Queues `event` for writing.
    pub async fn record(&self, event: AuditEvent) {
        if self.tx.send(Message::Event(event)).await.is_err() {
            tracing::error!("the audit writer has stopped: an audit event was not recorded");
        }
    }

    /// Waits until every event queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_batches(store: Store, mut rx: mpsc::Receiver<Message>) {
    let mut events = Vec::with_capacity(BATCH);
    let mut flushes = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Event(event) => events.push(event),
                Message::Flush(done) => flushes.push(done),
            }
            if events.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if !events.is_empty() {
            write_with_retries(&store, &events).await;
            events.clear();
        }
        for done in flushes.drain(..) {
            let _ = done.send(());
        }
    }
}

/// Writes `events`, waiting out a database outage of up to [`RETRIES`] × [`RETRY_EVERY`].
async fn write_with_retries(store: &Store, events: &[AuditEvent]) {
    for attempt in 0..=RETRIES {
        match store.record_audit_batch(events).await {
            Ok(()) => {
                if attempt > 0 {
                    tracing::info!(count = events.len(), "audit events written after the database came back");
                }
                return;
            }
            Err(e) if e.is_unavailable() && attempt < RETRIES => {
                if attempt == 0 {
                    tracing::warn!(count = events.len(), "database unavailable: holding audit events until it returns");
                }
                tokio::time::sleep(RETRY_EVERY).await;
            }
            Err(e) => {
                tracing::error!(error = ?e, count = events.len(), "writing audit events failed: they are lost");
                return;
            }
        }
    }
}
