//! A whole cluster in one process: one coordinator and N executors on 127.0.0.1, each with its
//! own listener and data dir. Used by `shoal demo` and by the integration tests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use shoal_coordinator::{Coordinator, CoordinatorConfig, PgAuth};
use shoal_executor::{ExecutorConfig, MemoryConfig};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How long `start` waits for every executor to register.
const REGISTRATION_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `shutdown` lets each node drain before aborting it.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Resolves when `sender` says so (or is dropped).
pub fn shutdown_signal(
    receiver: &watch::Receiver<bool>,
) -> impl Future<Output = ()> + Send + use<> {
    let mut receiver = receiver.clone();
    async move {
        let _ = receiver.wait_for(|stop| *stop).await;
    }
}

/// The shape of a local cluster.
#[derive(Debug, Clone)]
pub struct LocalClusterOptions {
    pub executors: usize,
    /// Flight SQL port of the coordinator on 127.0.0.1 (0: any free port).
    pub port: u16,
    /// Memory budget of each executor.
    pub executor_memory: MemoryConfig,
    /// Postgres wire protocol port on 127.0.0.1 (0: any free port; `None`: no listener).
    pub pg_port: Option<u16>,
    /// How Postgres clients log in.
    pub pg_auth: PgAuth,
    /// Password Flight SQL clients must give (`None`: everyone is accepted).
    pub flight_password: Option<String>,
}

impl LocalClusterOptions {
    pub fn new(executors: usize) -> Self {
        Self {
            executors,
            port: 0,
            executor_memory: MemoryConfig::default(),
            pg_port: Some(0),
            pg_auth: PgAuth::Trust,
            flight_password: None,
        }
    }
}

pub struct LocalCluster {
    /// Flight SQL URL of the coordinator, e.g. `grpc://127.0.0.1:50051`.
    pub url: String,
    /// Address of the Postgres listener, if there is one.
    pub pg_address: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl LocalCluster {
    /// Starts a coordinator and the executors `options` asks for, and waits until every
    /// executor has registered.
    pub async fn start(data_dir: &Path, options: &LocalClusterOptions) -> Result<Self, Error> {
        let executors = options.executors;
        let (stop, stopped) = watch::channel(false);
        let listener = TcpListener::bind(("127.0.0.1", options.port)).await?;
        let address = listener.local_addr()?;
        let pg_listener = match options.pg_port {
            Some(port) => Some(TcpListener::bind(("127.0.0.1", port)).await.map_err(|e| {
                format!("cannot listen for Postgres clients on 127.0.0.1:{port}: {e}")
            })?),
            None => None,
        };
        let pg_address = pg_listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let raft_listener = TcpListener::bind("127.0.0.1:0").await?;
        // Every executor is in this process: shuffles stay uncompressed (compressing would
        // cost CPU and save nothing).
        let mut config = CoordinatorConfig::single(1, data_dir.join("coordinator"));
        config.flight_password = options.flight_password.clone();
        let coordinator = Coordinator::open(config, raft_listener).await?;
        let probe = coordinator.clone();
        let mut tasks = Vec::new();
        if let Some(pg_listener) = pg_listener {
            let coordinator = coordinator.clone();
            let auth = options.pg_auth.clone();
            let shutdown = shutdown_signal(&stopped);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = coordinator
                    .serve_postgres(pg_listener, auth, shutdown)
                    .await
                {
                    tracing::error!(error = %e, "postgres listener stopped");
                }
            }));
        }
        tasks.push(tokio::spawn({
            let shutdown = shutdown_signal(&stopped);
            async move {
                if let Err(e) = coordinator.serve(listener, shutdown).await {
                    tracing::error!(error = %e, "coordinator stopped");
                }
            }
        }));
        let coordinator_url = format!("http://{address}");
        for i in 0..executors {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let config = ExecutorConfig {
                data_dir: executor_dir(data_dir, i),
                coordinators: vec![coordinator_url.clone()],
                advertise_address: None,
                labels: Default::default(),
                memory: options.executor_memory.clone(),
            };
            let shutdown = shutdown_signal(&stopped);
            tasks.push(tokio::spawn(async move {
                if let Err(e) = shoal_executor::serve(config, listener, shutdown).await {
                    tracing::error!(error = %e, "executor stopped");
                }
            }));
        }
        let deadline = Instant::now() + REGISTRATION_TIMEOUT;
        while probe.live_executors() < executors {
            if Instant::now() > deadline {
                let registered = probe.live_executors();
                let cluster = Self {
                    url: String::new(),
                    pg_address,
                    stop,
                    tasks,
                };
                cluster.shutdown().await;
                return Err(format!(
                    "only {registered} of {executors} executors registered within {} s",
                    REGISTRATION_TIMEOUT.as_secs()
                )
                .into());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Self {
            url: format!("grpc://{address}"),
            pg_address,
            stop,
            tasks,
        })
    }

    /// Stops every node: each gets a grace period to drain its connections, then is aborted so
    /// that nothing of this cluster keeps serving on an address a later cluster may reuse.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for mut task in self.tasks {
            if tokio::time::timeout(SHUTDOWN_GRACE, &mut task)
                .await
                .is_err()
            {
                tracing::warn!("a node did not stop within its grace period; aborting it");
                task.abort();
                let _ = task.await;
            }
        }
    }
}

/// Data dir of executor `i` under a cluster's data dir.
pub fn executor_dir(data_dir: &Path, i: usize) -> PathBuf {
    data_dir.join(format!("executor-{i}"))
}
