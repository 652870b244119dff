//! Statements between GetFlightInfo and DoGet, and the ones streaming now: a ticket is
//! redeemed once, expires after [`TICKET_TTL`], and can be cancelled in either state.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use arrow_flight::FlightData;
use futures::stream::AbortHandle;
use futures::{Stream, StreamExt};
use tonic::Status;

use crate::query_engine::QueryOutput;

/// A planned statement waits this long for its ticket to be redeemed.
pub const TICKET_TTL: Duration = Duration::from_secs(600);

pub type DoGetStream = Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

/// The protobuf timestamp `ttl` from now.
pub fn expires_after(ttl: std::time::Duration) -> prost_types::Timestamp {
    let at = (SystemTime::now() + ttl)
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    prost_types::Timestamp {
        seconds: at.as_secs() as i64,
        nanos: at.subsec_nanos() as i32,
    }
}

struct Pending {
    output: QueryOutput,
    created: Instant,
}

#[derive(Clone, Default)]
pub struct Tickets {
    pending: Arc<Mutex<HashMap<String, Pending>>>,
    running: Arc<Mutex<HashMap<String, AbortHandle>>>,
}

impl Tickets {
    /// Keeps `output` until its ticket is redeemed; returns the ticket's handle.
    pub fn remember(&self, output: QueryOutput) -> String {
        let handle = uuid::Uuid::new_v4().to_string();
        let mut pending = self.pending.lock().expect("not poisoned");
        pending.retain(|_, q| q.created.elapsed() < TICKET_TTL);
        pending.insert(
            handle.clone(),
            Pending {
                output,
                created: Instant::now(),
            },
        );
        handle
    }

    /// The statement behind `handle`, once.
    pub fn take(&self, handle: &str) -> Result<QueryOutput, Status> {
        self.pending
            .lock()
            .expect("not poisoned")
            .remove(handle)
            .filter(|q| q.created.elapsed() < TICKET_TTL)
            .map(|q| q.output)
            .ok_or_else(|| Status::not_found("unknown or expired ticket; run the statement again"))
    }

    /// `stream` for `handle`, registered so that [`Self::cancel`] can stop it. Dropping the
    /// stream (the client went away) drops the plan, which stops the work on the executors.
    pub fn track(&self, handle: String, stream: DoGetStream) -> DoGetStream {
        let (stream, abort) = futures::stream::abortable(stream);
        self.running
            .lock()
            .expect("not poisoned")
            .insert(handle.clone(), abort.clone());
        let registration = Registration {
            running: Arc::clone(&self.running),
            handle,
        };
        let cancelled = futures::stream::once(async move { abort.is_aborted() }).filter_map(
            |aborted| async move {
                aborted.then(|| Err(Status::cancelled("the statement was cancelled")))
            },
        );
        Box::pin(stream.chain(cancelled).map(move |item| {
            let _registered = &registration;
            item
        }))
    }

    /// Cancels the statement behind `handle`, waiting or streaming; false if it is unknown
    /// or already finished.
    pub fn cancel(&self, handle: &str) -> bool {
        let waiting = self
            .pending
            .lock()
            .expect("not poisoned")
            .remove(handle)
            .is_some();
        let streaming = self.running.lock().expect("not poisoned").remove(handle);
        if let Some(abort) = &streaming {
            abort.abort();
        }
        waiting || streaming.is_some()
    }
}

/// Removes a finished or dropped stream from the running set.
struct Registration {
    running: Arc<Mutex<HashMap<String, AbortHandle>>>,
    handle: String,
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.running
            .lock()
            .expect("not poisoned")
            .remove(&self.handle);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endless() -> DoGetStream {
        Box::pin(futures::stream::repeat_with(|| Ok(FlightData::default())))
    }

    #[tokio::test]
    async fn cancel_stops_a_streaming_statement_with_cancelled() {
        let tickets = Tickets::default();
        let mut stream = tickets.track("q".into(), endless());
        assert!(stream.next().await.unwrap().is_ok());
        assert!(tickets.cancel("q"));
        let last = stream.next().await.expect("an error after the cancel");
        assert_eq!(last.unwrap_err().code(), tonic::Code::Cancelled);
        assert!(stream.next().await.is_none());
        assert!(
            !tickets.cancel("q"),
            "a finished statement is not cancellable"
        );
    }

    #[tokio::test]
    async fn dropping_the_stream_unregisters_it() {
        let tickets = Tickets::default();
        drop(tickets.track("q".into(), endless()));
        assert!(!tickets.cancel("q"));
    }
}
