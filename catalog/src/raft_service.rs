//! The Raft RPC server: answers peers' AppendEntries, Vote and InstallSnapshot, and applies
//! proposals that followers forward to this node.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use openraft::error::{ClientWriteError, RaftError};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use crate::type_config::CatalogRaft;
use crate::wire::{ForwardError, ForwardedWrite, RpcRequest, RpcResponse, read_frame, write_frame};

/// How long a forwarded proposal may wait for commit and apply on the leader. Shorter than
/// the proposer's own deadline so the proposer hears an answer rather than a timeout.
pub(crate) const FORWARD_APPLY_TIMEOUT: Duration = Duration::from_secs(8);

/// A connection with no request for this long is closed (its client reconnects on demand).
const IDLE_TIMEOUT: Duration = Duration::from_secs(600);

/// Serves Raft RPCs on `listener` until `shutdown` completes, then closes every connection.
pub async fn serve_raft(
    listener: TcpListener,
    raft: CatalogRaft,
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
                    conns.spawn(serve_conn(stream, peer, raft.clone()));
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

async fn serve_conn(mut stream: TcpStream, peer: SocketAddr, raft: CatalogRaft) {
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
        let resp = handle(&raft, req).await;
        if let Err(e) = write_frame(&mut stream, &resp).await {
            tracing::debug!(%peer, error = %e, "raft connection write failed");
            return;
        }
    }
}

async fn handle(raft: &CatalogRaft, req: RpcRequest) -> RpcResponse {
    match req {
        RpcRequest::AppendEntries(rpc) => {
            RpcResponse::AppendEntries(raft.append_entries(rpc).await)
        }
        RpcRequest::Vote(rpc) => RpcResponse::Vote(raft.vote(rpc).await),
        RpcRequest::InstallSnapshot(rpc) => {
            RpcResponse::InstallSnapshot(raft.install_snapshot(rpc).await)
        }
        RpcRequest::ClientWrite(req) => RpcResponse::ClientWrite(client_write(raft, req).await),
    }
}

async fn client_write(
    raft: &CatalogRaft,
    req: crate::model::Request,
) -> Result<ForwardedWrite, ForwardError> {
    let client = req.client_id.clone();
    let seq = req.seq;
    match tokio::time::timeout(FORWARD_APPLY_TIMEOUT, raft.client_write(req)).await {
        Ok(Ok(resp)) => Ok(ForwardedWrite {
            index: resp.log_id.index,
            response: resp.data,
        }),
        Ok(Err(RaftError::APIError(ClientWriteError::ForwardToLeader(f)))) => {
            Err(ForwardError::NotLeader {
                leader_id: f.leader_id,
                leader_addr: f.leader_node.map(|n| n.addr),
            })
        }
        Ok(Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(e)))) => {
            Err(ForwardError::Failed(e.to_string()))
        }
        Ok(Err(RaftError::Fatal(e))) => Err(ForwardError::Unavailable(format!(
            "leader is stopping: {e}"
        ))),
        Err(_) => {
            tracing::warn!(%client, seq, "forwarded proposal not applied in time");
            Err(ForwardError::Unavailable(format!(
                "proposal not committed within {FORWARD_APPLY_TIMEOUT:?} (no quorum?)"
            )))
        }
    }
}
