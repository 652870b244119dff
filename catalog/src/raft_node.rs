//! `RaftNode`: the running Raft instance with what its RPC service needs besides Raft itself.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::model::NodeId;
use crate::state::CatalogState;
use crate::type_config::CatalogRaft;
use crate::wire::NodeStatus;

#[derive(Clone)]
pub(crate) struct RaftNode {
    pub node_id: NodeId,
    pub raft: CatalogRaft,
    pub state_rx: watch::Receiver<Arc<CatalogState>>,
    /// A leader that has not heard from a quorum for this long refuses work.
    pub quorum_timeout: Duration,
    /// Whether this node takes part in Raft. A node that starts with empty storage takes no
    /// AppendEntries, votes or snapshots until it has checked that the group does not know
    /// its id already (a wiped node that voted before could otherwise vote twice in a term).
    pub admitted: watch::Receiver<bool>,
}

impl RaftNode {
    pub fn is_admitted(&self) -> bool {
        *self.admitted.borrow()
    }

    /// This node's view of itself and of the group.
    pub async fn status(&self) -> NodeStatus {
        // A stopped Raft reports itself as uninitialized only if it really has no state; an
        // error here means it is shutting down, which callers treat like no answer.
        let initialized = self.raft.is_initialized().await.unwrap_or(true);
        let metrics = self.raft.metrics().borrow().clone();
        let membership = metrics.membership_config.membership();
        let state = self.state_rx.borrow().clone();
        NodeStatus {
            node_id: self.node_id,
            initialized,
            term: metrics.current_term,
            leader: metrics.current_leader,
            voters: membership.voter_ids().collect(),
            members: membership
                .nodes()
                .map(|(id, node)| (*id, node.addr.clone()))
                .collect(),
            applied_index: state.applied_index(),
            coordinators: state.coordinators.clone(),
        }
    }
}
