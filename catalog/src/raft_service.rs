//! The Raft RPC server: answers peers' AppendEntries, Vote and InstallSnapshot, and, as leader,
//! the proposals, read-index requests and membership changes that followers forward.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::leader;
use crate::raft_node::RaftNode;
use crate::wire::{RpcRequest, RpcResponse, read_frame, write_frame};

/// How long a forwarded proposal may wait for commit and apply on the leader. Shorter than
/// the proposer's own deadline so the proposer hears an answer rather than a timeout.
pub(crate) const FORWARD_APPLY_TIMEOUT: Duration = Duration::from_secs(8);

/// A connection with no request for this long is closed (its client reconnects on demand).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Serves Raft RPCs on `listener` until `shutdown` completes, then closes every connection.
pub(crate) async fn serve_raft(
    listener: TcpListener,
    node: RaftNode,
    shutdown: impl Future<Output = ()>,
) {
    let local = listener.local_addr().ok();
    tracing::info!(addr = ?local, "raft service listening");
    tokio::pin!(shutdown);
    let mut conns = JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    conns.spawn(serve_conn(stream, peer, node.clone()));
                }
                Err(e) => {
                    // Typically out of file descriptors: back off instead of spinning.
                    tracing::warn!(error = %e, "raft accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    tracing::info!(addr = ?local, "raft service stopped");
}

async fn serve_conn(mut stream: TcpStream, peer: SocketAddr, node: RaftNode) {
    loop {
        let req = match tokio::time::timeout(IDLE_TIMEOUT, read_frame::<_, RpcRequest>(&mut stream))
            .await
        {
            Ok(Ok(Some(req))) => req,
            Ok(Ok(None)) | Err(_) => return,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "raft connection read failed");
                return;
            }
        };
        let raft_protocol = matches!(
            req,
            RpcRequest::AppendEntries(_) | RpcRequest::Vote(_) | RpcRequest::InstallSnapshot(_)
        );
        if raft_protocol && !node.is_admitted() {
            // Not yet checked against the group (see `RaftNode::admitted`): the sender sees a
            // broken connection and retries later.
            tracing::debug!(%peer, "raft message before this node was admitted; closing");
            return;
        }
        let resp = handle(&node, req).await;
        if let Err(e) = write_frame(&mut stream, &resp).await {
            tracing::debug!(%peer, error = %e, "raft connection write failed");
            return;
        }
    }
}

async fn handle(node: &RaftNode, req: RpcRequest) -> RpcResponse {
    let raft = &node.raft;
    match req {
        RpcRequest::AppendEntries(rpc) => {
            RpcResponse::AppendEntries(raft.append_entries(rpc).await)
        }
        RpcRequest::Vote(rpc) => RpcResponse::Vote(raft.vote(rpc).await),
        RpcRequest::InstallSnapshot(rpc) => {
            RpcResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
        RpcRequest::ClientWrite(req) => {
            let (client, seq) = (req.client_id.clone(), req.seq);
            let deadline = Instant::now() + FORWARD_APPLY_TIMEOUT;
            let result = leader::write(raft, req, node.quorum_timeout, deadline).await;
            if let Err(e) = &result {
                tracing::debug!(%client, seq, error = ?e, "forwarded proposal not applied");
            }
            RpcResponse::ClientWrite(result)
        }
        RpcRequest::ReadIndex => RpcResponse::ReadIndex(
            leader::read_index(raft, Instant::now() + FORWARD_APPLY_TIMEOUT).await,
        ),
        RpcRequest::ChangeMembership(change) => {
            RpcResponse::ChangeMembership(leader::change_membership(raft, change).await)
        }
        RpcRequest::Status => RpcResponse::Status(node.status().await),
    }
}
