//! Starts a coordinator on already-bound listeners.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use shoal_catalog::{Catalog, CatalogConfig};
use shoal_flight::incoming::nodelay_incoming;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::info;

use arrow::ipc::CompressionType;

use crate::cluster::Cluster;
use crate::error::CoordinatorError;
use crate::flight_sql_service::ShoalFlightSqlService;
use crate::query_engine::QueryEngine;

#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// Raft node id of this coordinator.
    pub node_id: u64,
    /// Where the catalog (Raft log and state) lives.
    pub data_dir: PathBuf,
    /// How batches are compressed between executors (`None`: not at all, for executors that
    /// share a machine, where compressing costs CPU and saves no network).
    pub shuffle_compression: Option<CompressionType>,
}

/// A coordinator whose catalog is open and led; `serve` starts answering clients.
#[derive(Clone)]
pub struct Coordinator {
    cluster: Arc<Cluster>,
    engine: QueryEngine,
}

impl Coordinator {
    /// Opens the catalog (serving Raft on `raft_listener`) and becomes the single voter if the
    /// catalog is new.
    pub async fn open(
        config: CoordinatorConfig,
        raft_listener: TcpListener,
    ) -> Result<Self, CoordinatorError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let raft_addr = raft_listener.local_addr()?.to_string();
        let catalog_config =
            CatalogConfig::new(config.node_id, config.data_dir.join("catalog"), raft_addr);
        let catalog = Catalog::open(catalog_config, raft_listener).await?;
        catalog.bootstrap_single().await?;
        let cluster = Cluster::new(catalog);
        let runtime = Arc::new(
            RuntimeEnvBuilder::new()
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        );
        let engine = QueryEngine::new(Arc::clone(&cluster), runtime, config.shuffle_compression);
        Ok(Self { cluster, engine })
    }

    /// Executors that heartbeat now.
    pub fn live_executors(&self) -> usize {
        self.cluster
            .executors
            .live(&self.cluster.catalog.state())
            .len()
    }

    pub fn engine(&self) -> &QueryEngine {
        &self.engine
    }

    /// Serves Flight SQL on `listener` until `shutdown` resolves, then closes the catalog.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CoordinatorError> {
        let service = FlightServiceServer::new(ShoalFlightSqlService::new(self.engine.clone()))
            .max_decoding_message_size(usize::MAX)
            .max_encoding_message_size(usize::MAX);
        info!(address = %listener.local_addr()?, "coordinator serving Flight SQL");
        let result = Server::builder()
            .tcp_nodelay(true)
            .add_service(service)
            .serve_with_incoming_shutdown(nodelay_incoming(listener), shutdown)
            .await;
        self.cluster.catalog.shutdown().await?;
        result.map_err(CoordinatorError::from)
    }
}
