//! Starts an executor on an already-bound listener.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::FutureExt;
use shoal_flight::LocalShardStore;
use shoal_flight::incoming::nodelay_incoming;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::info;

use crate::error::ExecutorError;
use crate::flight_service::ExecutorFlightService;
use crate::heartbeat::KnownCoordinators;
use crate::memory::{MemoryConfig, runtime_env};
use crate::shard_store::ShardStore;
use crate::worker::StageWorker;

#[derive(Debug, Clone)]
pub struct ExecutorConfig {
    /// Where shard files live.
    pub data_dir: PathBuf,
    /// Flight addresses of the coordinators, e.g. `http://127.0.0.1:50051` (any subset will do:
    /// the others are learned from their answers).
    pub coordinators: Vec<String>,
    /// Address other nodes use to reach this executor; defaults to the listener's address.
    pub advertise_address: Option<String>,
    /// Labels such as `region=eu`.
    pub labels: BTreeMap<String, String>,
    /// Memory budget and spilling for the plan stages that run here.
    pub memory: MemoryConfig,
}

/// Serves the executor on `listener` until `shutdown` resolves.
pub async fn serve(
    config: ExecutorConfig,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ExecutorError> {
    let local = listener.local_addr().map_err(|source| ExecutorError::Io {
        path: "listener".into(),
        source,
    })?;
    let address = config
        .advertise_address
        .clone()
        .unwrap_or_else(|| format!("http://{local}"));
    let store = Arc::new(ShardStore::open(&config.data_dir)?);
    let data_id = store.data_id()?;
    let runtime = runtime_env(&config.data_dir, &config.memory)?;
    info!(
        %address,
        data_dir = %config.data_dir.display(),
        memory_limit = ?config.memory.limit,
        spill = config.memory.spill,
        "executor starting"
    );

    let shutdown = shutdown.shared();
    let coordinators = KnownCoordinators::default();
    let heartbeat = tokio::spawn(crate::heartbeat::run(
        coordinators.clone(),
        config.coordinators.clone(),
        data_id,
        address.clone(),
        config.labels.clone(),
        shutdown.clone(),
    ));

    let local_store = LocalShardStore {
        data_dir: store.data_dir().to_path_buf(),
        address,
    };
    let worker = StageWorker::new(local_store, runtime);
    let flight = FlightServiceServer::new(ExecutorFlightService::new(
        Arc::clone(&store),
        worker.clone(),
        coordinators,
    ))
    .max_decoding_message_size(usize::MAX)
    .max_encoding_message_size(usize::MAX);
    let mut server = Server::builder().tcp_nodelay(true);
    let result = worker
        .add_service(&mut server)
        .add_service(flight)
        .serve_with_incoming_shutdown(nodelay_incoming(listener), shutdown)
        .await;
    heartbeat.abort();
    result.map_err(ExecutorError::from)
}
