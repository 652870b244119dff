//! Cancel requests. A client cancels by opening a new connection that names its backend's
//! process id and secret key; the statement running on that backend then stops, whether it
//! is still planning or already streaming rows (pgwire's own cancel covers only the first).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use pgwire::api::ClientInfo;
use pgwire::api::cancel::CancelHandler;
use pgwire::messages::cancel::CancelRequest;
use tokio_util::sync::CancellationToken;

/// The backend key of a connection: its process id and secret key.
type BackendKey = (i32, Bytes);

/// The cancellation token of the statement each connection runs now.
#[derive(Debug, Default)]
pub(super) struct Cancels {
    running: Mutex<HashMap<BackendKey, CancellationToken>>,
}

impl Cancels {
    /// A token for the statement `client` starts now; a cancel request for its connection
    /// fires it.
    pub fn start<C: ClientInfo>(self: &Arc<Self>, client: &C) -> CancellationToken {
        let (pid, secret) = client.pid_and_secret_key();
        let key = (pid, secret.to_bytes());
        // Dropped with the connection, so a closed connection leaves no entry behind.
        client.session_extensions().get_or_insert_with(|| Forget {
            cancels: Arc::clone(self),
            key: key.clone(),
        });
        let token = CancellationToken::new();
        self.lock().insert(key, token.clone());
        token
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<BackendKey, CancellationToken>> {
        self.running.lock().expect("cancel registry lock poisoned")
    }
}

#[async_trait]
impl CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: CancelRequest) {
        let key = (request.pid, request.secret_key.to_bytes());
        if let Some(token) = self.lock().get(&key) {
            tracing::info!(pid = request.pid, "postgres cancel request");
            token.cancel();
        }
    }
}

/// Removes a connection's entry when the connection ends.
struct Forget {
    cancels: Arc<Cancels>,
    key: BackendKey,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.cancels.lock().remove(&self.key);
    }
}
