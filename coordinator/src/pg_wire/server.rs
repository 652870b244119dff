//! The Postgres listener: serves every connection accepted on an already-bound listener until
//! shutdown, then closes the connections still open.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use pgwire::api::PgWireServerHandlers;
use pgwire::api::auth::StartupHandler;
use pgwire::api::cancel::CancelHandler;
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use pgwire::tokio::process_socket;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tracing::{debug, info, warn};

use super::auth::{PgAuth, Startup};
use super::handler::PgHandler;
use crate::query_engine::QueryEngine;

/// Serves the Postgres wire protocol on `listener` with `engine` until `shutdown` resolves.
pub async fn serve(
    listener: TcpListener,
    engine: QueryEngine,
    auth: PgAuth,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let handler = Arc::new(PgHandler::new(engine));
    info!(address = %listener.local_addr()?, ?auth, "postgres wire protocol listening");
    let mut connections = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => accepted,
            // Reap finished connections so the set does not grow with every client.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (socket, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                // Out of file descriptors and the like: wait rather than spin.
                warn!(error = %e, "cannot accept a postgres connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let handlers = ConnectionHandlers {
            handler: Arc::clone(&handler),
            startup: Arc::new(auth.startup_handler()),
        };
        connections.spawn(async move {
            if let Err(e) = process_socket(socket, None, handlers).await {
                debug!(%peer, error = %e, "postgres connection ended");
            }
        });
    }
    connections.shutdown().await;
    Ok(())
}

/// The handlers of one connection: shared query handling, its own startup exchange.
struct ConnectionHandlers {
    handler: Arc<PgHandler>,
    startup: Arc<Startup>,
}

impl PgWireServerHandlers for ConnectionHandlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        Arc::clone(&self.handler)
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        Arc::clone(&self.handler)
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        Arc::clone(&self.startup)
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        Arc::clone(&self.handler.cancels)
    }
}
