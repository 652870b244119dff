//! `Catalog`: the handle a coordinator holds — opens storage, runs Raft and its RPC service,
//! proposes commands (forwarding to the leader) and exposes the applied state.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{ClientWriteError, Fatal, InitializeError, RaftError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, Config, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout_at};

use crate::error::CatalogError;
use crate::model::{Command, NodeId, Request, Response};
use crate::network::{TcpNetworkFactory, forward_write};
use crate::raft_service::{FORWARD_APPLY_TIMEOUT, serve_raft};
use crate::state::CatalogState;
use crate::storage::open_storage;
use crate::type_config::CatalogRaft;
use crate::wire::ForwardError;

/// How long `propose` keeps trying (elections, forwarding, commit) before giving up.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long bootstrap waits for a leader: several election timeouts on a slow machine.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Pause between proposal attempts while there is no usable leader.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// How to run one catalog node.
#[derive(Clone, Debug)]
pub struct CatalogConfig {
    /// Raft node id; stable for this data dir.
    pub node_id: NodeId,
    /// Holds `catalog.redb`.
    pub data_dir: PathBuf,
    /// `host:port` where peers reach this node's Raft listener.
    pub raft_addr: String,
    pub heartbeat_ms: u64,
    pub election_min_ms: u64,
    pub election_max_ms: u64,
    /// Build a snapshot (and purge the log behind it) every this many applied entries.
    pub snapshot_every: u64,
}

impl CatalogConfig {
    /// A config with the timeouts tuned for slow, shared machines (heartbeat 250 ms,
    /// election 1-2 s) and a snapshot every 1000 entries.
    pub fn new(
        node_id: NodeId,
        data_dir: impl Into<PathBuf>,
        raft_addr: impl Into<String>,
    ) -> Self {
        CatalogConfig {
            node_id,
            data_dir: data_dir.into(),
            raft_addr: raft_addr.into(),
            heartbeat_ms: 250,
            election_min_ms: 1000,
            election_max_ms: 2000,
            snapshot_every: 1000,
        }
    }

    fn raft_config(&self) -> Result<Config, CatalogError> {
        let snapshot_every = self.snapshot_every.max(1);
        let config = Config {
            cluster_name: "shoal-catalog".to_string(),
            heartbeat_interval: self.heartbeat_ms,
            election_timeout_min: self.election_min_ms,
            election_timeout_max: self.election_max_ms,
            // Per snapshot chunk; openraft's 200 ms default is too tight for a busy machine.
            install_snapshot_timeout: self.election_max_ms.max(1000),
            snapshot_policy: SnapshotPolicy::LogsSinceLast(snapshot_every),
            // Keep a little log behind the snapshot so a briefly lagging follower catches up
            // from the log, while the log stays bounded by about twice `snapshot_every`.
            max_in_snapshot_log_to_keep: snapshot_every.min(1000),
            // Purge in batches (fewer redb transactions), but never more than an interval.
            purge_batch_size: snapshot_every.min(64),
            ..Default::default()
        };
        config
            .validate()
            .map_err(|e| CatalogError::Raft(format!("invalid raft config: {e}")))
    }
}

/// A (client id, next seq) pair used by one proposal at a time. Proposals on one lane are
/// sequential, so the state machine's "seq not newer than the last one is a duplicate" rule
/// can never mistake a concurrent proposal for a retry.
struct Lane {
    client_id: String,
    next_seq: u64,
}

struct Inner {
    node_id: NodeId,
    /// This node's advertised Raft `host:port`.
    raft_addr: String,
    raft: CatalogRaft,
    state_rx: watch::Receiver<Arc<CatalogState>>,
    /// Random per `Catalog` instance; lane client ids are `<instance>-<lane>`.
    instance_id: String,
    lanes_created: AtomicU64,
    idle_lanes: Mutex<Vec<Lane>>,
    server_stop: Mutex<Option<oneshot::Sender<()>>>,
    server: Mutex<Option<JoinHandle<()>>>,
}

/// The catalog handle. Cheap to clone.
#[derive(Clone)]
pub struct Catalog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog")
            .field("node_id", &self.inner.node_id)
            .field("applied_index", &self.applied_index())
            .finish()
    }
}

fn random_instance_id(node_id: NodeId) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    // RandomState is seeded from OS randomness; two of them give 128 unpredictable bits.
    let a = RandomState::new().hash_one(nanos);
    let b = RandomState::new().hash_one((nanos, std::process::id()));
    format!("n{node_id}-{a:016x}{b:016x}")
}

fn fatal_to_error(e: Fatal<NodeId>) -> CatalogError {
    match e {
        Fatal::Stopped => CatalogError::Shutdown,
        other => CatalogError::Raft(other.to_string()),
    }
}

impl Catalog {
    /// Opens (or creates) the storage in `data_dir`, starts Raft, and serves Raft RPCs on
    /// `raft_listener`.
    pub async fn open(
        config: CatalogConfig,
        raft_listener: tokio::net::TcpListener,
    ) -> Result<Catalog, CatalogError> {
        let raft_config = Arc::new(config.raft_config()?);
        let (log_store, state_machine) = open_storage(&config.data_dir).await?;
        let state_rx = state_machine.subscribe();
        let raft = CatalogRaft::new(
            config.node_id,
            raft_config,
            TcpNetworkFactory,
            log_store,
            state_machine,
        )
        .await
        .map_err(fatal_to_error)?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let server = tokio::spawn(serve_raft(raft_listener, raft.clone(), async move {
            let _ = stop_rx.await;
        }));
        tracing::info!(node_id = config.node_id, raft_addr = %config.raft_addr, data_dir = %config.data_dir.display(), "catalog opened");
        Ok(Catalog {
            inner: Arc::new(Inner {
                node_id: config.node_id,
                raft_addr: config.raft_addr.clone(),
                raft,
                state_rx,
                instance_id: random_instance_id(config.node_id),
                lanes_created: AtomicU64::new(0),
                idle_lanes: Mutex::new(Vec::new()),
                server_stop: Mutex::new(Some(stop_tx)),
                server: Mutex::new(Some(server)),
            }),
        })
    }

    /// Initializes a single-voter cluster if this storage has never been initialized
    /// (idempotent on restart), then waits until this node is leader.
    pub async fn bootstrap_single(&self) -> Result<(), CatalogError> {
        let addr = self.inner.raft_addr.clone();
        self.initialize(BTreeMap::from([(self.inner.node_id, addr)]))
            .await?;
        let me = self.inner.node_id;
        self.wait_metrics(LEADER_TIMEOUT, "this node is leader", move |m| {
            m.state == ServerState::Leader && m.current_leader == Some(me)
        })
        .await?;
        Ok(())
    }

    /// Initializes a cluster of `members` (node id -> Raft `host:port`) if this storage has
    /// never been initialized, then waits until some node is leader and returns its id.
    /// Call it on one node (calling it on every node with the same members is also safe).
    pub async fn bootstrap_cluster(
        &self,
        members: BTreeMap<NodeId, String>,
    ) -> Result<NodeId, CatalogError> {
        self.initialize(members).await?;
        self.wait_leader(LEADER_TIMEOUT).await
    }

    /// Waits until this node knows a leader and returns its id.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<NodeId, CatalogError> {
        let m = self
            .wait_metrics(timeout, "a leader is known", |m| m.current_leader.is_some())
            .await?;
        m.current_leader
            .ok_or_else(|| CatalogError::Unavailable("no leader".into()))
    }

    async fn initialize(&self, members: BTreeMap<NodeId, String>) -> Result<(), CatalogError> {
        let raft = &self.inner.raft;
        if raft.is_initialized().await.map_err(fatal_to_error)? {
            tracing::info!(node_id = self.inner.node_id, "catalog already initialized");
            return Ok(());
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match raft.initialize(nodes).await {
            Ok(()) => {
                tracing::info!(node_id = self.inner.node_id, "catalog cluster initialized");
                Ok(())
            }
            // Someone (maybe a peer's bootstrap) got there first: that is the goal anyway.
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(node_id = self.inner.node_id, reason = %e, "catalog initialize not needed");
                Ok(())
            }
            Err(RaftError::APIError(e)) => Err(CatalogError::Raft(e.to_string())),
            Err(RaftError::Fatal(e)) => Err(fatal_to_error(e)),
        }
    }

    async fn wait_metrics(
        &self,
        timeout: Duration,
        what: &str,
        cond: impl Fn(&RaftMetrics<NodeId, BasicNode>) -> bool + Send,
    ) -> Result<RaftMetrics<NodeId, BasicNode>, CatalogError> {
        self.inner
            .raft
            .wait(Some(timeout))
            .metrics(cond, what)
            .await
            .map_err(|e| match e {
                WaitError::Timeout(t, what) => {
                    CatalogError::Unavailable(format!("timed out after {t:?} waiting until {what}"))
                }
                WaitError::ShuttingDown => CatalogError::Shutdown,
            })
    }

    fn take_lane(&self) -> Lane {
        if let Some(lane) = self
            .inner
            .idle_lanes
            .lock()
            .expect("lane pool poisoned")
            .pop()
        {
            return lane;
        }
        let n = self.inner.lanes_created.fetch_add(1, Ordering::Relaxed);
        Lane {
            client_id: format!("{}-{n}", self.inner.instance_id),
            next_seq: 1,
        }
    }

    fn return_lane(&self, lane: Lane) {
        self.inner
            .idle_lanes
            .lock()
            .expect("lane pool poisoned")
            .push(lane);
    }

    /// Proposes a command with a fresh (client id, seq). If this node is not the leader,
    /// forwards it to the leader. Waits until the entry is applied locally before returning,
    /// so the caller reads its own write. `Response::Rejected(r)` becomes
    /// `Err(CatalogError::Rejected(r))`.
    pub async fn propose(&self, command: Command) -> Result<Response, CatalogError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let mut lane = self.take_lane();
        let req = Request {
            client_id: lane.client_id.clone(),
            seq: lane.next_seq,
            command,
        };
        lane.next_seq += 1;
        // The lane goes back even on error: a late commit of this seq is harmless because the
        // lane's next seq is newer (the state machine then treats this one as stale).
        let result = self.propose_request(req, deadline).await;
        self.return_lane(lane);
        let (index, response) = result?;
        self.wait_applied(
            index,
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        )
        .await?;
        match response {
            Response::Rejected(r) => Err(CatalogError::Rejected(r)),
            other => Ok(other),
        }
    }

    /// Gets `req` committed and applied by the leader; returns its log index and response.
    /// Every attempt reuses the same (client id, seq), so a retry never applies twice.
    async fn propose_request(
        &self,
        req: Request,
        deadline: Instant,
    ) -> Result<(u64, Response), CatalogError> {
        let raft = &self.inner.raft;
        let mut last_failure: Option<CatalogError> = None;
        loop {
            if Instant::now() >= deadline {
                return Err(last_failure.unwrap_or_else(|| {
                    CatalogError::Unavailable(format!(
                        "proposal not committed within {PROPOSE_TIMEOUT:?}"
                    ))
                }));
            }
            let local = match timeout_at(deadline, raft.client_write(req.clone())).await {
                Ok(r) => r,
                Err(_) => {
                    return Err(CatalogError::Unavailable(format!(
                        "proposal not committed within {PROPOSE_TIMEOUT:?} (no quorum?)"
                    )));
                }
            };
            let forward = match local {
                Ok(resp) => return Ok((resp.log_id.index, resp.data)),
                Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f))) => f,
                Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e))) => {
                    return Err(CatalogError::Raft(e.to_string()));
                }
                Err(RaftError::Fatal(e)) => return Err(fatal_to_error(e)),
            };
            let leader = match (forward.leader_id, forward.leader_node) {
                (Some(id), Some(node)) if id != self.inner.node_id => Some((id, node.addr)),
                _ => None,
            };
            let Some((leader_id, addr)) = leader else {
                // An election is under way.
                last_failure = Some(CatalogError::Unavailable(
                    "no catalog leader elected".into(),
                ));
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            let ttl = deadline
                .saturating_duration_since(Instant::now())
                .min(FORWARD_APPLY_TIMEOUT + Duration::from_secs(2));
            match forward_write(&addr, req.clone(), ttl).await {
                Ok(Ok(w)) => {
                    tracing::debug!(leader_id, index = w.index, client = %req.client_id, seq = req.seq, "proposal forwarded");
                    return Ok((w.index, w.response));
                }
                Ok(Err(ForwardError::NotLeader { leader_addr, .. })) => {
                    // Leadership moved; our own view will catch up.
                    last_failure = Some(CatalogError::NotLeader {
                        leader: leader_addr,
                    });
                }
                Ok(Err(ForwardError::Unavailable(msg))) => {
                    last_failure = Some(CatalogError::Unavailable(msg));
                }
                Ok(Err(ForwardError::Failed(msg))) => return Err(CatalogError::Raft(msg)),
                Err(e) => {
                    tracing::debug!(leader_id, %addr, error = %e, "forwarding proposal failed");
                    last_failure = Some(CatalogError::NotLeader { leader: Some(addr) });
                }
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// The current applied state (a pinned, immutable version).
    pub fn state(&self) -> Arc<CatalogState> {
        self.inner.state_rx.borrow().clone()
    }

    /// Applied log index of `state()`.
    pub fn applied_index(&self) -> u64 {
        self.inner.state_rx.borrow().applied_index()
    }

    /// A receiver that sees every applied state version, for callers that react to changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogState>> {
        self.inner.state_rx.clone()
    }

    /// Waits until the local state machine has applied at least `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), CatalogError> {
        let mut rx = self.inner.state_rx.clone();
        match tokio::time::timeout(timeout, rx.wait_for(|s| s.applied_index() >= index)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(CatalogError::Shutdown),
            Err(_) => Err(CatalogError::Unavailable(format!(
                "catalog did not apply index {index} within {timeout:?} (applied: {})",
                self.applied_index()
            ))),
        }
    }

    pub fn is_leader(&self) -> bool {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.node_id)
    }

    /// This node's Raft id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node_id
    }

    /// The current leader's id and Raft address, as far as this node knows.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.inner.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// The underlying Raft node, for membership changes and metrics.
    pub fn raft(&self) -> &CatalogRaft {
        &self.inner.raft
    }

    /// Stops serving Raft RPCs and stops Raft. The storage is released shortly after (a later
    /// `open` of the same dir waits for that).
    pub async fn shutdown(&self) -> Result<(), CatalogError> {
        let stop = self
            .inner
            .server_stop
            .lock()
            .expect("server_stop poisoned")
            .take();
        if let Some(stop) = stop {
            let _ = stop.send(());
        }
        let server = self.inner.server.lock().expect("server poisoned").take();
        if let Some(server) = server
            && tokio::time::timeout(Duration::from_secs(5), server)
                .await
                .is_err()
        {
            tracing::warn!(
                node_id = self.inner.node_id,
                "raft service did not stop in time"
            );
        }
        self.inner
            .raft
            .shutdown()
            .await
            .map_err(|e| CatalogError::Raft(e.to_string()))?;
        tracing::info!(node_id = self.inner.node_id, "catalog shut down");
        Ok(())
    }
}
