//! What only the leader does, for its own proposals and for those its peers forward: commit a
//! write, confirm a read index, change membership. A leader that stops hearing from a quorum
//! gives up instead of waiting, so an isolated minority refuses work quickly.

use std::collections::BTreeSet;
use std::time::Duration;

use openraft::error::{ChangeMembershipError, CheckIsLeaderError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::model::{NodeId, Request};
use crate::type_config::CatalogRaft;
use crate::wire::{ForwardError, ForwardedWrite, MembershipChange};

/// How often a waiting leader re-checks that a quorum still answers it.
const QUORUM_CHECK_EVERY: Duration = Duration::from_millis(100);
/// How long adding a coordinator may take to copy the catalog to it.
const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether this leader heard from a quorum within `quorum_timeout`. `None` (not leader, or a
/// leader that never replicated yet) counts as fresh: Raft itself answers those cases.
fn quorum_is_fresh(raft: &CatalogRaft, quorum_timeout: Duration) -> bool {
    raft.metrics()
        .borrow()
        .millis_since_quorum_ack
        .is_none_or(|ms| ms <= quorum_timeout.as_millis() as u64)
}

fn lost_quorum() -> ForwardError {
    ForwardError::Unavailable(
        "the catalog leader lost contact with a quorum of coordinators".to_string(),
    )
}

fn not_leader(f: openraft::error::ForwardToLeader<NodeId, BasicNode>) -> ForwardError {
    ForwardError::NotLeader {
        leader_id: f.leader_id,
        leader_addr: f.leader_node.map(|n| n.addr),
    }
}

fn client_write_error(e: RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>) -> ForwardError {
    match e {
        RaftError::APIError(ClientWriteError::ForwardToLeader(f)) => not_leader(f),
        RaftError::APIError(ClientWriteError::ChangeMembershipError(e)) => {
            ForwardError::Failed(e.to_string())
        }
        RaftError::Fatal(e) => ForwardError::Unavailable(format!("catalog is stopping: {e}")),
    }
}

/// Commits `req` if this node leads, waiting while a quorum keeps acknowledging this leader
/// (until `deadline`). A leader cut off from its quorum returns `Unavailable` about
/// `quorum_timeout` after the last acknowledgement; the write's outcome is then unknown, and
/// retrying the same request is safe.
pub(crate) async fn write(
    raft: &CatalogRaft,
    req: Request,
    quorum_timeout: Duration,
    deadline: Instant,
) -> Result<ForwardedWrite, ForwardError> {
    if !quorum_is_fresh(raft, quorum_timeout) {
        return Err(lost_quorum());
    }
    let commit = raft.client_write(req);
    tokio::pin!(commit);
    loop {
        let next_check = (Instant::now() + QUORUM_CHECK_EVERY).min(deadline);
        tokio::select! {
            done = &mut commit => {
                let committed = done.map_err(client_write_error)?;
                // One line per acknowledged write, for the chaos tests' split-brain check:
                // no term may have two nodes acknowledging writes as leader.
                tracing::debug!(
                    target: "shoal_catalog::ack",
                    term = committed.log_id.leader_id.term,
                    leader = raft.metrics().borrow().id,
                    index = committed.log_id.index,
                    "write acknowledged"
                );
                return Ok(ForwardedWrite {
                    index: committed.log_id.index,
                    response: committed.data,
                });
            }
            _ = sleep_until(next_check) => {
                if Instant::now() >= deadline {
                    return Err(ForwardError::Unavailable(
                        "the catalog write was not committed in time".to_string(),
                    ));
                }
                if !quorum_is_fresh(raft, quorum_timeout) {
                    return Err(lost_quorum());
                }
            }
        }
    }
}

/// The log index a linearizable read must wait for, after a quorum confirmed this leader.
pub(crate) async fn read_index(raft: &CatalogRaft, deadline: Instant) -> Result<u64, ForwardError> {
    match timeout_at(deadline, raft.get_read_log_id()).await {
        Ok(Ok((read_log_id, _))) => Ok(read_log_id.map_or(0, |l| l.index)),
        Ok(Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(f)))) => Err(not_leader(f)),
        Ok(Err(RaftError::APIError(CheckIsLeaderError::QuorumNotEnough(_)))) => Err(lost_quorum()),
        Ok(Err(RaftError::Fatal(e))) => Err(ForwardError::Unavailable(format!(
            "catalog is stopping: {e}"
        ))),
        Err(_) => Err(lost_quorum()),
    }
}

/// Applies one membership change if this node leads. Adding waits (up to a minute) until the
/// new coordinator has caught up, by log or snapshot, before it becomes a voter.
pub(crate) async fn change_membership(
    raft: &CatalogRaft,
    change: MembershipChange,
) -> Result<(), ForwardError> {
    match change {
        MembershipChange::AddVoter {
            node_id,
            raft_address,
        } => {
            let voters = current_voters(raft);
            if voters.contains(&node_id) {
                return Ok(());
            }
            let added = timeout_at(
                Instant::now() + CATCH_UP_TIMEOUT,
                raft.add_learner(node_id, BasicNode::new(raft_address), true),
            )
            .await
            .map_err(|_| {
                ForwardError::Unavailable(format!(
                    "coordinator {node_id} did not catch up within {CATCH_UP_TIMEOUT:?}; is it running?"
                ))
            })?;
            added.map_err(client_write_error)?;
            raft.change_membership(ChangeMembers::AddVoterIds(BTreeSet::from([node_id])), false)
                .await
                .map_err(client_write_error)?;
            Ok(())
        }
        MembershipChange::RemoveVoter { node_id } => {
            let voters = current_voters(raft);
            if !voters.contains(&node_id) {
                // Maybe a learner left over from an interrupted add: drop it too.
                return remove_nodes(raft, node_id).await;
            }
            if voters.len() == 1 {
                return Err(ForwardError::Failed(format!(
                    "coordinator {node_id} is the only voter; the catalog needs at least one"
                )));
            }
            raft.change_membership(
                ChangeMembers::RemoveVoters(BTreeSet::from([node_id])),
                false,
            )
            .await
            .map_err(client_write_error)?;
            Ok(())
        }
    }
}

async fn remove_nodes(raft: &CatalogRaft, node_id: NodeId) -> Result<(), ForwardError> {
    let known = raft
        .metrics()
        .borrow()
        .membership_config
        .membership()
        .get_node(&node_id)
        .is_some();
    if !known {
        return Ok(());
    }
    match raft
        .change_membership(ChangeMembers::RemoveNodes(BTreeSet::from([node_id])), false)
        .await
    {
        Ok(_) => Ok(()),
        Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
            ChangeMembershipError::LearnerNotFound(_),
        ))) => Ok(()),
        Err(e) => Err(client_write_error(e)),
    }
}

/// The voter ids of the membership this node currently uses.
pub(crate) fn current_voters(raft: &CatalogRaft) -> BTreeSet<NodeId> {
    raft.metrics()
        .borrow()
        .membership_config
        .membership()
        .voter_ids()
        .collect()
}
