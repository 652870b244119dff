//! The Raft wire protocol between coordinators: u32 big-endian length-prefixed bincode frames,
//! one request frame answered by one response frame.

use std::io;

use openraft::error::{InstallSnapshotError, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use std::collections::{BTreeMap, BTreeSet};

use crate::model::{CoordinatorInfo, NodeId, Request, Response};
use crate::type_config::TypeConfig;

/// Largest frame accepted; guards against garbage lengths (snapshots travel in 3 MiB chunks).
const MAX_FRAME: usize = 256 << 20;

/// A request from one coordinator to another.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcRequest {
    AppendEntries(AppendEntriesRequest<TypeConfig>),
    Vote(VoteRequest<NodeId>),
    InstallSnapshot(InstallSnapshotRequest<TypeConfig>),
    /// A proposal forwarded by a follower to the leader.
    ClientWrite(Request),
    /// A follower asks the leader for a linearizable read index.
    ReadIndex,
    /// A membership change forwarded to the leader.
    ChangeMembership(MembershipChange),
    /// What a node knows about itself and the group (cluster formation, admin status).
    Status,
}

/// The answer to an [`RpcRequest`], same variant.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum RpcResponse {
    AppendEntries(Result<AppendEntriesResponse<NodeId>, RaftError<NodeId>>),
    Vote(Result<VoteResponse<NodeId>, RaftError<NodeId>>),
    InstallSnapshot(
        Result<InstallSnapshotResponse<NodeId>, RaftError<NodeId, InstallSnapshotError>>,
    ),
    ClientWrite(Result<ForwardedWrite, ForwardError>),
    ReadIndex(Result<u64, ForwardError>),
    ChangeMembership(Result<(), ForwardError>),
    Status(NodeStatus),
}

/// A change to the set of voting coordinators.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum MembershipChange {
    /// Copy the catalog to a new coordinator, then make it a voter.
    AddVoter {
        node_id: NodeId,
        raft_address: String,
    },
    /// Remove a coordinator from the group (voter or leftover learner).
    RemoveVoter { node_id: NodeId },
}

/// One coordinator's view of itself and of the Raft group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct NodeStatus {
    pub node_id: NodeId,
    /// Whether this node's storage holds a vote or log, i.e. it belongs to some group.
    pub initialized: bool,
    pub term: u64,
    pub leader: Option<NodeId>,
    /// Voter ids and every member's Raft address, learners included.
    pub voters: BTreeSet<NodeId>,
    pub members: BTreeMap<NodeId, String>,
    pub applied_index: u64,
    /// Coordinators the applied catalog knows, retired ones included.
    pub coordinators: BTreeMap<NodeId, CoordinatorInfo>,
}

/// A forwarded proposal that the leader applied at `index`.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct ForwardedWrite {
    pub index: u64,
    pub response: Response,
}

/// Why the leader did not apply a forwarded proposal.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum ForwardError {
    /// The receiver is not the leader (any more); it may know who is.
    NotLeader {
        leader_id: Option<NodeId>,
        leader_addr: Option<String>,
    },
    /// No quorum or a deadline passed; retry later.
    Unavailable(String),
    /// Anything else; retrying will not help.
    Failed(String),
}

pub(crate) async fn write_frame<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> io::Result<()> {
    let bytes = bincode::serialize(msg).map_err(io::Error::other)?;
    if bytes.len() > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("frame of {} bytes is too large", bytes.len()),
        ));
    }
    w.write_u32(bytes.len() as u32).await?;
    w.write_all(&bytes).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` on a clean end of stream before a frame starts.
pub(crate) async fn read_frame<R: AsyncRead + Unpin, T: DeserializeOwned>(
    r: &mut R,
) -> io::Result<Option<T>> {
    let len = match r.read_u32().await {
        Ok(len) => len as usize,
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    };
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is too large"),
        ));
    }
    let mut buf = vec![0u8; len];
    r.read_exact(&mut buf).await?;
    bincode::deserialize(&buf)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Command;

    #[tokio::test]
    async fn frames_roundtrip() {
        let (mut a, mut b) = tokio::io::duplex(1024);
        let req = RpcRequest::ClientWrite(Request {
            client_id: "c".into(),
            seq: 7,
            command: Command::AbortWrite { txn: 3 },
        });
        write_frame(&mut a, &req).await.unwrap();
        drop(a);
        let got: Option<RpcRequest> = read_frame(&mut b).await.unwrap();
        match got {
            Some(RpcRequest::ClientWrite(r)) => assert_eq!(r.seq, 7),
            other => panic!("{other:?}"),
        }
        let end: Option<RpcRequest> = read_frame(&mut b).await.unwrap();
        assert!(end.is_none());
    }
}
