//! Starts a coordinator on already-bound listeners.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arrow_flight::flight_service_server::FlightServiceServer;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use shoal_catalog::{Catalog, CatalogConfig, Command, Formation};
use shoal_flight::incoming::nodelay_incoming;
use tokio::net::TcpListener;
use tonic::transport::Server;
use tracing::info;

use arrow::ipc::CompressionType;

use crate::cluster::Cluster;
use crate::error::CoordinatorError;
use crate::flight_sql::{FlightAuth, FrontDoor, ShoalFlightSqlService};
use crate::pg_wire::PgAuth;
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
    /// Alone, or one of several coordinators.
    pub membership: Membership,
    /// Raft `host:port` peers use to reach this node (default: the Raft listener's address,
    /// or this node's entry in `Membership::Bootstrap`).
    pub raft_advertise: Option<String>,
    /// Flight address clients and executors use to reach this node (default:
    /// `http://<Flight listener address>`).
    pub flight_advertise: Option<String>,
    /// Password Flight SQL clients must give (any user name); `None` accepts everyone.
    pub flight_password: Option<String>,
    pub raft_timing: RaftTiming,
}

impl CoordinatorConfig {
    /// A single coordinator (its own catalog group) with default settings.
    pub fn single(node_id: u64, data_dir: impl Into<PathBuf>) -> Self {
        Self {
            node_id,
            data_dir: data_dir.into(),
            shuffle_compression: None,
            membership: Membership::Single,
            raft_advertise: None,
            flight_advertise: None,
            flight_password: None,
            raft_timing: RaftTiming::default(),
        }
    }
}

/// How this coordinator takes part in the catalog's Raft group.
#[derive(Debug, Clone)]
pub enum Membership {
    /// The only voter (the demo, tests, a one-node install).
    Single,
    /// One of these voters (node id -> Raft `host:port`); see [`Formation::Bootstrap`].
    Bootstrap(BTreeMap<u64, String>),
    /// A new node joining the running group through these Raft addresses.
    Join(Vec<String>),
}

/// Raft timing; the defaults suit slow, shared machines.
#[derive(Debug, Clone, Copy)]
pub struct RaftTiming {
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
}

impl Default for RaftTiming {
    fn default() -> Self {
        let defaults = CatalogConfig::new(0, "", "");
        Self {
            heartbeat_ms: defaults.heartbeat_ms,
            election_min_ms: defaults.election_min_ms,
            election_max_ms: defaults.election_max_ms,
        }
    }
}

/// A coordinator whose catalog is open and led; `serve` starts answering clients.
#[derive(Clone)]
pub struct Coordinator {
    cluster: Arc<Cluster>,
    engine: QueryEngine,
    flight_advertise: Option<String>,
    flight_auth: FlightAuth,
}

/// Pause between attempts to announce this coordinator in the catalog.
const ANNOUNCE_RETRY: Duration = Duration::from_secs(1);

impl Coordinator {
    /// Opens the catalog (serving Raft on `raft_listener`) and takes this node's place in the
    /// group: the single voter, one of the bootstrap voters, or a joining node.
    pub async fn open(
        config: CoordinatorConfig,
        raft_listener: TcpListener,
    ) -> Result<Self, CoordinatorError> {
        std::fs::create_dir_all(&config.data_dir)?;
        let raft_addr = match (&config.raft_advertise, &config.membership) {
            (Some(addr), _) => addr.clone(),
            (None, Membership::Bootstrap(members)) => match members.get(&config.node_id) {
                Some(addr) => addr.clone(),
                None => raft_listener.local_addr()?.to_string(),
            },
            (None, _) => raft_listener.local_addr()?.to_string(),
        };
        let mut catalog_config =
            CatalogConfig::new(config.node_id, config.data_dir.join("catalog"), raft_addr);
        catalog_config.heartbeat_ms = config.raft_timing.heartbeat_ms;
        catalog_config.election_min_ms = config.raft_timing.election_min_ms;
        catalog_config.election_max_ms = config.raft_timing.election_max_ms;
        let catalog = Catalog::open(catalog_config, raft_listener).await?;
        match &config.membership {
            Membership::Single => catalog.bootstrap_single().await?,
            Membership::Bootstrap(members) => {
                catalog.start(Formation::Bootstrap(members.clone())).await?
            }
            Membership::Join(peers) => catalog.start(Formation::Join(peers.clone())).await?,
        }
        let cluster = Cluster::new(catalog);
        // Writes spill their sorted runs here; files left by a crash belong to no write.
        let spill_dir = config.data_dir.join("spill");
        if spill_dir.exists() {
            std::fs::remove_dir_all(&spill_dir)?;
        }
        std::fs::create_dir_all(&spill_dir)?;
        let runtime = Arc::new(
            RuntimeEnvBuilder::new()
                .with_disk_manager_builder(
                    DiskManagerBuilder::default()
                        .with_mode(DiskManagerMode::Directories(vec![spill_dir])),
                )
                .build()
                .map_err(|e| std::io::Error::other(e.to_string()))?,
        );
        let engine = QueryEngine::new(Arc::clone(&cluster), runtime, config.shuffle_compression);
        Ok(Self {
            cluster,
            engine,
            flight_advertise: config.flight_advertise,
            flight_auth: match config.flight_password {
                Some(password) => FlightAuth::with_password(password),
                None => FlightAuth::open(),
            },
        })
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

    /// Serves the Postgres wire protocol on `listener` until `shutdown` resolves. It runs
    /// beside [`Self::serve`], which owns the catalog's lifetime.
    pub async fn serve_postgres(
        &self,
        listener: TcpListener,
        auth: PgAuth,
        shutdown: impl Future<Output = ()>,
    ) -> Result<(), CoordinatorError> {
        crate::pg_wire::serve(listener, self.engine.clone(), auth, shutdown).await?;
        Ok(())
    }

    /// Serves Flight SQL on `listener` until `shutdown` resolves, then closes the catalog.
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), CoordinatorError> {
        let flight_address = match &self.flight_advertise {
            Some(address) => address.clone(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let service = FlightServiceServer::new(FrontDoor::new(
            ShoalFlightSqlService::new(self.engine.clone())
                .with_flight_address(&flight_address)
                .with_auth(self.flight_auth.clone()),
        ))
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX);
        info!(address = %flight_address, "coordinator serving Flight SQL");
        let announce = tokio::spawn(announce(Arc::clone(&self.cluster), flight_address));
        let retired = retired(self.cluster.catalog.clone());
        let stop = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = retired => {
                    tracing::warn!("this coordinator was removed from the catalog group; shutting down");
                }
            }
        };
        let result = Server::builder()
            .tcp_nodelay(true)
            .add_service(service)
            .serve_with_incoming_shutdown(nodelay_incoming(listener), stop)
            .await;
        announce.abort();
        self.cluster.catalog.shutdown().await?;
        result.map_err(CoordinatorError::from)
    }
}

/// Resolves once the catalog says this coordinator was removed from the group.
async fn retired(catalog: Catalog) {
    let me = catalog.node_id();
    let mut states = catalog.subscribe();
    let removed = states
        .wait_for(|s| s.coordinators.get(&me).is_some_and(|c| c.retired))
        .await
        .is_ok();
    if !removed {
        // The catalog stopped: the server is shutting down anyway.
        std::future::pending::<()>().await;
    }
}

/// Records this coordinator's addresses in the catalog, retrying until the group has a
/// leader that accepts it. Executors learn every coordinator from there, and a node that
/// held the catalog once is known to the group if its data dir is ever wiped.
async fn announce(cluster: Arc<Cluster>, flight_address: String) {
    let catalog = &cluster.catalog;
    let node_id = catalog.node_id();
    let raft_address = catalog.raft_address().to_string();
    loop {
        let known =
            catalog.state().coordinators.get(&node_id).is_some_and(|c| {
                c.flight_address == flight_address && c.raft_address == raft_address
            });
        if known {
            return;
        }
        let command = Command::RegisterCoordinator {
            node_id,
            flight_address: flight_address.clone(),
            raft_address: raft_address.clone(),
        };
        match catalog.propose(command).await {
            Ok(_) => {
                info!(node_id, %flight_address, "coordinator announced in the catalog");
                return;
            }
            Err(e) if e.retryable() => {
                tracing::debug!(error = %e, "announcing the coordinator; retrying")
            }
            Err(e) => {
                tracing::error!(error = %e, "this coordinator cannot be announced in the catalog");
                return;
            }
        }
        tokio::time::sleep(ANNOUNCE_RETRY).await;
    }
}
