//! Getting work done by the leader: run it here if this node leads, else forward it to the
//! leader over the Raft RPCs; retry through elections, and give up with a retryable error once
//! no working leader has answered for `leaderless_timeout`.

use std::time::Duration;

use tokio::time::Instant;

use crate::catalog::Catalog;
use crate::error::CatalogError;
use crate::leader;
use crate::model::{NodeId, Request};
use crate::network::{call_peer, unexpected_response};
use crate::wire::{ForwardError, ForwardedWrite, MembershipChange, RpcRequest, RpcResponse};

/// Pause between attempts while there is no usable leader.
const RETRY_PAUSE: Duration = Duration::from_millis(100);
/// How long connecting to a peer may take; a peer behind a network cut never answers.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
/// How long a forwarded request may take once the leader has it.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a membership change may take (it first copies the catalog to a new node).
pub(crate) const MEMBERSHIP_TIMEOUT: Duration = Duration::from_secs(75);

/// Work only the leader can do.
#[derive(Debug)]
pub(crate) enum LeaderCall {
    Write(Request),
    ReadIndex,
    Membership(MembershipChange),
}

#[derive(Debug)]
pub(crate) enum LeaderAnswer {
    Write(ForwardedWrite),
    ReadIndex(u64),
    Membership,
}

impl Catalog {
    /// Runs `call` on the leader: here if this node leads, else forwarded. Gives up with a
    /// retryable error once no working leader was found for `leaderless_timeout`, or at once
    /// when this node leads but lost its quorum.
    pub(crate) async fn on_leader(
        &self,
        call: LeaderCall,
        deadline: Instant,
    ) -> Result<LeaderAnswer, CatalogError> {
        let me = self.node().node_id;
        let mut leaderless_since: Option<Instant> = None;
        let mut last_failure: Option<CatalogError> = None;
        loop {
            let now = Instant::now();
            let budget_spent =
                leaderless_since.is_some_and(|t| now - t >= self.leaderless_timeout());
            if now >= deadline || budget_spent {
                return Err(last_failure.unwrap_or_else(|| {
                    CatalogError::Unavailable("no catalog leader answered in time".into())
                }));
            }
            // Once an attempt has failed, the rest must fit in what is left of the budget.
            let attempt_deadline = leaderless_since
                .map_or(deadline, |t| (t + self.leaderless_timeout()).min(deadline));
            let outcome = match self.leader() {
                Some((id, _)) if id == me => {
                    let local = self.run_on_leader(&call, attempt_deadline).await;
                    if let Err(ForwardError::Unavailable(msg)) = &local {
                        // A leader without a quorum will not get one back by retrying here.
                        return Err(CatalogError::Unavailable(msg.clone()));
                    }
                    local
                }
                Some((id, addr)) => self.forward(&call, id, &addr, attempt_deadline).await,
                None => Err(ForwardError::NotLeader {
                    leader_id: None,
                    leader_addr: None,
                }),
            };
            match outcome {
                Ok(answer) => return Ok(answer),
                Err(ForwardError::Failed(msg)) => return Err(CatalogError::Raft(msg)),
                Err(ForwardError::NotLeader {
                    leader_addr: Some(addr),
                    ..
                }) => {
                    last_failure = Some(CatalogError::NotLeader { leader: Some(addr) });
                }
                Err(ForwardError::NotLeader { .. }) => {
                    last_failure = Some(CatalogError::Unavailable(
                        "no catalog leader is elected (is a majority of coordinators up and reachable?)"
                            .into(),
                    ));
                }
                Err(ForwardError::Unavailable(msg)) => {
                    last_failure = Some(CatalogError::Unavailable(msg));
                }
            }
            leaderless_since.get_or_insert(now);
            self.wait_for_new_leader(RETRY_PAUSE).await;
        }
    }

    /// Waits up to `pause`, less if this node learns of a different leader meanwhile.
    async fn wait_for_new_leader(&self, pause: Duration) {
        let mut metrics = self.node().raft.metrics();
        let seen = metrics.borrow().current_leader;
        let _ = tokio::time::timeout(
            pause,
            metrics.wait_for(|m| m.current_leader.is_some() && m.current_leader != seen),
        )
        .await;
    }

    async fn run_on_leader(
        &self,
        call: &LeaderCall,
        deadline: Instant,
    ) -> Result<LeaderAnswer, ForwardError> {
        let node = &self.node();
        match call {
            LeaderCall::Write(req) => {
                leader::write(&node.raft, req.clone(), node.quorum_timeout, deadline)
                    .await
                    .map(LeaderAnswer::Write)
            }
            LeaderCall::ReadIndex => leader::read_index(
                &node.raft,
                deadline.min(Instant::now() + node.quorum_timeout),
            )
            .await
            .map(LeaderAnswer::ReadIndex),
            LeaderCall::Membership(change) => leader::change_membership(&node.raft, change.clone())
                .await
                .map(|()| LeaderAnswer::Membership),
        }
    }

    /// Sends `call` to the leader `leader_id` at `addr`. Abandons the wait as soon as this
    /// node stops seeing `leader_id` as leader (it died or was cut off; a new election is on).
    async fn forward(
        &self,
        call: &LeaderCall,
        leader_id: NodeId,
        addr: &str,
        deadline: Instant,
    ) -> Result<LeaderAnswer, ForwardError> {
        let request = match call {
            LeaderCall::Write(req) => RpcRequest::ClientWrite(req.clone()),
            LeaderCall::ReadIndex => RpcRequest::ReadIndex,
            LeaderCall::Membership(change) => RpcRequest::ChangeMembership(change.clone()),
        };
        let budget = if matches!(call, LeaderCall::Membership(_)) {
            MEMBERSHIP_TIMEOUT
        } else {
            FORWARD_TIMEOUT
        };
        let deadline = deadline.min(Instant::now() + budget);
        let mut metrics = self.node().raft.metrics();
        let leader_changed = metrics.wait_for(|m| m.current_leader != Some(leader_id));
        let response = tokio::select! {
            r = call_peer(addr, &request, CONNECT_TIMEOUT, deadline) => r,
            _ = leader_changed => {
                return Err(ForwardError::Unavailable(format!(
                    "catalog leader {leader_id} was lost while it handled the request"
                )));
            }
        };
        let response = response.map_err(|e| {
            tracing::debug!(leader_id, %addr, error = %e, "forwarding to the catalog leader failed");
            ForwardError::Unavailable(format!("catalog leader {leader_id} at {addr}: {e}"))
        })?;
        match response {
            RpcResponse::ClientWrite(r) => r.map(LeaderAnswer::Write),
            RpcResponse::ReadIndex(r) => r.map(LeaderAnswer::ReadIndex),
            RpcResponse::ChangeMembership(r) => r.map(|()| LeaderAnswer::Membership),
            other => Err(ForwardError::Unavailable(
                unexpected_response(&other).to_string(),
            )),
        }
    }
}
