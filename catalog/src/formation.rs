//! How a coordinator whose data dir holds no catalog finds its place: it forms a new group
//! only when every peer is reachable and empty, joins an existing one otherwise, and refuses
//! to start under an id the group already knows (a wiped node must come back as a new id).

use std::collections::BTreeMap;
use std::time::Duration;

use futures::future::join_all;

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::model::NodeId;
use crate::wire::NodeStatus;

/// How long one status question to a peer may take.
const STATUS_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause between rounds of questions while peers are missing.
const ROUND_PAUSE: Duration = Duration::from_millis(500);
/// Every how many rounds the wait is logged.
const LOG_EVERY: u32 = 10;

/// How a coordinator with an empty data dir starts.
#[derive(Clone, Debug)]
pub enum Formation {
    /// Be one of exactly these voters (node id -> Raft `host:port`, this node included). The
    /// lowest id creates the group once all the others answer and none holds a catalog.
    Bootstrap(BTreeMap<NodeId, String>),
    /// Join the running group reachable at any of these Raft addresses; an administrator
    /// then adds this node (`Catalog::add_coordinator`).
    Join(Vec<String>),
}

impl Catalog {
    /// Makes sure this node belongs to a group, per `formation`. A node whose storage already
    /// holds a catalog returns at once. Waits (logging) while peers are unreachable. Until it
    /// has checked with its peers, a node with empty storage takes no part in Raft.
    pub async fn start(&self, formation: Formation) -> Result<(), CatalogError> {
        let me = self.node_id();
        let peers: Vec<String> = match &formation {
            Formation::Bootstrap(members) => {
                if !members.contains_key(&me) {
                    return Err(CatalogError::Misconfigured(format!(
                        "--peers must list this coordinator's own id {me}"
                    )));
                }
                members
                    .iter()
                    .filter(|(id, _)| **id != me)
                    .map(|(_, addr)| addr.clone())
                    .collect()
            }
            Formation::Join(peers) => peers.clone(),
        };
        let mut round = 0u32;
        loop {
            if self.is_initialized().await? {
                return Ok(());
            }
            let answers: Vec<NodeStatus> = join_all(
                peers
                    .iter()
                    .map(|addr| Catalog::peer_status(addr, STATUS_TIMEOUT)),
            )
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
            if let Some(known) = answers.iter().find_map(|s| s.coordinators.get(&me)) {
                return Err(CatalogError::Misconfigured(format!(
                    "coordinator id {me} already belongs to this cluster{}, but this data dir holds no catalog (was it wiped?). \
                     Node ids are never reused: remove the old node with `shoal admin remove-coordinator --node-id {me}`, \
                     then start this one with a new --node-id and --join, and add it with `shoal admin add-coordinator`",
                    if known.retired { " (retired)" } else { "" }
                )));
            }
            // No peer knows this id: from here on, taking part in Raft is safe.
            self.admit();
            if let Some(existing) = answers.iter().find(|s| s.initialized) {
                if !existing.members.contains_key(&me) {
                    tracing::info!(
                        node_id = me,
                        "waiting to be added to the running catalog group (shoal admin add-coordinator)"
                    );
                }
                return Ok(());
            }
            if let Formation::Bootstrap(members) = &formation {
                let lowest = members.keys().next().copied();
                if answers.len() == peers.len() && lowest == Some(me) {
                    return self.initialize(members.clone()).await;
                }
            }
            if round.is_multiple_of(LOG_EVERY) {
                tracing::info!(
                    node_id = me,
                    answered = answers.len(),
                    peers = peers.len(),
                    "waiting for the other coordinators before forming the catalog group"
                );
            }
            round += 1;
            tokio::time::sleep(ROUND_PAUSE).await;
        }
    }
}
