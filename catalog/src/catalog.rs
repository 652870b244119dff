//! `Catalog`: the handle a coordinator holds — opens storage, runs Raft and its RPC service,
//! proposes commands (forwarding to the leader) and exposes the applied state.

use std::collections::BTreeMap;
use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use openraft::error::{Fatal, InitializeError, RaftError};
use openraft::metrics::WaitError;
use openraft::{BasicNode, Config, RaftMetrics, ServerState, SnapshotPolicy};
use tokio::sync::{oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::error::CatalogError;
use crate::model::{Command, NodeId, Request, Response};
use crate::network::{TcpNetworkFactory, call_peer, unexpected_response};
use crate::raft_node::RaftNode;
use crate::raft_service::serve_raft;
use crate::routing::{LeaderAnswer, LeaderCall, MEMBERSHIP_TIMEOUT};
use crate::state::CatalogState;
use crate::storage::open_storage;
use crate::type_config::CatalogRaft;
use crate::wire::{MembershipChange, NodeStatus, RpcRequest, RpcResponse};

/// How long `propose` keeps trying (elections, forwarding, commit) before giving up.
const PROPOSE_TIMEOUT: Duration = Duration::from_secs(15);
/// How long bootstrap waits for a leader: several election timeouts on a slow machine.
const LEADER_TIMEOUT: Duration = Duration::from_secs(30);

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
    /// A request that finds no working leader for this long fails with a retryable error,
    /// so that a coordinator cut off from the majority refuses work quickly.
    pub leaderless_timeout: Duration,
}

impl CatalogConfig {
    /// A config with a snapshot every 1000 entries and Raft timeouts that keep a leader through
    /// a saturated 2-core machine (heartbeat 100 ms, election 0.5-0.8 s: no election in 15 s
    /// at 100% CPU in the chaos test) while a dead leader is replaced within about 2 s.
    /// openraft's followers refuse votes for `election_max_ms` after the last heartbeat (their
    /// leader lease), so an election takes one to two timeouts.
    pub fn new(
        node_id: NodeId,
        data_dir: impl Into<PathBuf>,
        raft_addr: impl Into<String>,
    ) -> Self {
        CatalogConfig {
            node_id,
            data_dir: data_dir.into(),
            raft_addr: raft_addr.into(),
            heartbeat_ms: 100,
            election_min_ms: 500,
            election_max_ms: 800,
            snapshot_every: 1000,
            leaderless_timeout: Duration::from_millis(1500),
        }
    }

    /// A leader that has not heard from a quorum for this long stops accepting work: by then
    /// the others may have elected a new leader.
    fn quorum_timeout(&self) -> Duration {
        Duration::from_millis(self.election_min_ms)
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
    node: RaftNode,
    admit: watch::Sender<bool>,
    /// This node's advertised Raft `host:port`.
    raft_addr: String,
    leaderless_timeout: Duration,
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
            .field("node_id", &self.inner.node.node_id)
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

/// Records the node id in `<data dir>/node_id` on first use and refuses a different one
/// later: the Raft log and vote in a data dir belong to one node id only.
fn check_node_id(config: &CatalogConfig) -> Result<(), CatalogError> {
    std::fs::create_dir_all(&config.data_dir)?;
    let path = config.data_dir.join("node_id");
    match std::fs::read_to_string(&path) {
        Ok(stored) => {
            let stored = stored.trim();
            if stored != config.node_id.to_string() {
                return Err(CatalogError::Misconfigured(format!(
                    "{} belongs to coordinator {stored}, not {}; give each coordinator its own data dir",
                    config.data_dir.display(),
                    config.node_id
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::write(&path, format!("{}\n", config.node_id))?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
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
        check_node_id(&config)?;
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
        let has_state = raft.is_initialized().await.map_err(fatal_to_error)?;
        let (admit, admitted) = watch::channel(has_state);
        let node = RaftNode {
            node_id: config.node_id,
            raft,
            state_rx,
            quorum_timeout: config.quorum_timeout(),
            admitted,
        };
        let server = tokio::spawn(serve_raft(raft_listener, node.clone(), async move {
            let _ = stop_rx.await;
        }));
        tracing::info!(node_id = config.node_id, raft_addr = %config.raft_addr, data_dir = %config.data_dir.display(), "catalog opened");
        Ok(Catalog {
            inner: Arc::new(Inner {
                node,
                admit,
                raft_addr: config.raft_addr.clone(),
                leaderless_timeout: config.leaderless_timeout,
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
        self.initialize(BTreeMap::from([(self.inner.node.node_id, addr)]))
            .await?;
        let me = self.inner.node.node_id;
        self.wait_metrics(LEADER_TIMEOUT, "this node is leader", move |m| {
            m.state == ServerState::Leader && m.current_leader == Some(me)
        })
        .await?;
        Ok(())
    }

    /// Waits until this node knows a leader and returns its id.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<NodeId, CatalogError> {
        let m = self
            .wait_metrics(timeout, "a leader is known", |m| m.current_leader.is_some())
            .await?;
        m.current_leader
            .ok_or_else(|| CatalogError::Unavailable("no leader".into()))
    }

    /// Whether this node's storage holds a vote or log (it belongs to a group).
    pub(crate) async fn is_initialized(&self) -> Result<bool, CatalogError> {
        self.inner
            .node
            .raft
            .is_initialized()
            .await
            .map_err(fatal_to_error)
    }

    /// Lets this node take part in Raft (see `RaftNode::admitted`).
    pub(crate) fn admit(&self) {
        self.inner.admit.send_replace(true);
    }

    /// Creates the group of `members` if this node's storage is empty.
    pub(crate) async fn initialize(
        &self,
        members: BTreeMap<NodeId, String>,
    ) -> Result<(), CatalogError> {
        self.admit();
        let raft = &self.inner.node.raft;
        if raft.is_initialized().await.map_err(fatal_to_error)? {
            tracing::info!(
                node_id = self.inner.node.node_id,
                "catalog already initialized"
            );
            return Ok(());
        }
        let nodes: BTreeMap<NodeId, BasicNode> = members
            .into_iter()
            .map(|(id, addr)| (id, BasicNode::new(addr)))
            .collect();
        match raft.initialize(nodes).await {
            Ok(()) => {
                tracing::info!(
                    node_id = self.inner.node.node_id,
                    "catalog cluster initialized"
                );
                Ok(())
            }
            // Someone (maybe a peer's bootstrap) got there first: that is the goal anyway.
            Err(RaftError::APIError(InitializeError::NotAllowed(e))) => {
                tracing::info!(node_id = self.inner.node.node_id, reason = %e, "catalog initialize not needed");
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
            .node
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
        match self.on_leader(LeaderCall::Write(req), deadline).await? {
            LeaderAnswer::Write(w) => Ok((w.index, w.response)),
            other => Err(CatalogError::Raft(format!("unexpected answer {other:?}"))),
        }
    }

    /// The applied state, at least as new as every change acknowledged anywhere in the group
    /// before this call (a linearizable read: the leader confirms it still leads, then this
    /// node waits until it has applied as far as the leader had committed).
    pub async fn linearizable_state(&self) -> Result<Arc<CatalogState>, CatalogError> {
        let deadline = Instant::now() + PROPOSE_TIMEOUT;
        let LeaderAnswer::ReadIndex(index) =
            self.on_leader(LeaderCall::ReadIndex, deadline).await?
        else {
            return Err(CatalogError::Raft(
                "unexpected answer to a read index".into(),
            ));
        };
        self.wait_applied(
            index,
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_secs(1)),
        )
        .await?;
        Ok(self.state())
    }

    /// Adds a coordinator to the group: the leader copies the catalog to it (log or
    /// snapshot), then makes it a voter. The new node must be running with `Formation::Join`.
    /// Ids are never reused: a retired id is refused.
    pub async fn add_coordinator(
        &self,
        node_id: NodeId,
        raft_address: String,
    ) -> Result<(), CatalogError> {
        if self
            .linearizable_state()
            .await?
            .coordinators
            .get(&node_id)
            .is_some_and(|c| c.retired)
        {
            return Err(crate::model::Rejection::CoordinatorRetired(node_id).into());
        }
        let change = MembershipChange::AddVoter {
            node_id,
            raft_address,
        };
        self.on_leader(
            LeaderCall::Membership(change),
            Instant::now() + MEMBERSHIP_TIMEOUT,
        )
        .await?;
        tracing::info!(node_id, "coordinator added");
        Ok(())
    }

    /// Removes a coordinator from the group and retires its id for good. The id is retired
    /// first, while the node still receives the log, so that it learns it was removed (a node
    /// dropped from the membership stops hearing from the leader and might never know).
    pub async fn remove_coordinator(&self, node_id: NodeId) -> Result<(), CatalogError> {
        self.propose(Command::RetireCoordinator { node_id }).await?;
        self.wait_until_peer_applied(node_id, self.applied_index())
            .await;
        let change = MembershipChange::RemoveVoter { node_id };
        self.on_leader(
            LeaderCall::Membership(change),
            Instant::now() + MEMBERSHIP_TIMEOUT,
        )
        .await?;
        tracing::info!(node_id, "coordinator retired and removed");
        Ok(())
    }

    /// Waits (up to 10 s) until member `node_id` has applied `index`, so that it has seen an
    /// entry before it stops receiving the log. Returns early if it does not answer (down).
    async fn wait_until_peer_applied(&self, node_id: NodeId, index: u64) {
        let addr = {
            let metrics = self.node().raft.metrics();
            let metrics = metrics.borrow();
            metrics
                .membership_config
                .membership()
                .get_node(&node_id)
                .map(|n| n.addr.clone())
        };
        let Some(addr) = addr else { return };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            match Catalog::peer_status(&addr, Duration::from_secs(1)).await {
                Ok(status) if status.applied_index < index => {
                    tokio::time::sleep(Duration::from_millis(100)).await
                }
                _ => return,
            }
        }
    }

    /// This node's view of itself and of the group.
    pub async fn status(&self) -> NodeStatus {
        self.inner.node.status().await
    }

    /// Asks the node at Raft address `addr` for its status.
    pub async fn peer_status(addr: &str, timeout: Duration) -> std::io::Result<NodeStatus> {
        match call_peer(addr, &RpcRequest::Status, timeout, Instant::now() + timeout).await? {
            RpcResponse::Status(status) => Ok(status),
            other => Err(unexpected_response(&other)),
        }
    }

    /// The current applied state (a pinned, immutable version).
    pub fn state(&self) -> Arc<CatalogState> {
        self.inner.node.state_rx.borrow().clone()
    }

    /// Applied log index of `state()`.
    pub fn applied_index(&self) -> u64 {
        self.inner.node.state_rx.borrow().applied_index()
    }

    /// A receiver that sees every applied state version, for callers that react to changes.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogState>> {
        self.inner.node.state_rx.clone()
    }

    /// Waits until the local state machine has applied at least `index`.
    pub async fn wait_applied(&self, index: u64, timeout: Duration) -> Result<(), CatalogError> {
        let mut rx = self.inner.node.state_rx.clone();
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
        let m = self.inner.node.raft.metrics();
        let m = m.borrow();
        m.state == ServerState::Leader && m.current_leader == Some(self.inner.node.node_id)
    }

    pub(crate) fn node(&self) -> &RaftNode {
        &self.inner.node
    }

    pub(crate) fn leaderless_timeout(&self) -> Duration {
        self.inner.leaderless_timeout
    }

    /// This node's advertised Raft `host:port`.
    pub fn raft_address(&self) -> &str {
        &self.inner.raft_addr
    }

    /// This node's Raft id.
    pub fn node_id(&self) -> NodeId {
        self.inner.node.node_id
    }

    /// The current leader's id and Raft address, as far as this node knows.
    pub fn leader(&self) -> Option<(NodeId, String)> {
        let m = self.inner.node.raft.metrics();
        let m = m.borrow();
        let id = m.current_leader?;
        let addr = m.membership_config.membership().get_node(&id)?.addr.clone();
        Some((id, addr))
    }

    /// The underlying Raft node, for membership changes and metrics.
    pub fn raft(&self) -> &CatalogRaft {
        &self.inner.node.raft
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
                node_id = self.inner.node.node_id,
                "raft service did not stop in time"
            );
        }
        self.inner
            .node
            .raft
            .shutdown()
            .await
            .map_err(|e| CatalogError::Raft(e.to_string()))?;
        tracing::info!(node_id = self.inner.node.node_id, "catalog shut down");
        Ok(())
    }
}
