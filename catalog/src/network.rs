//! The Raft network client: openraft's `RaftNetworkFactory` over TCP, plus proposal forwarding.

use std::io;
use std::time::Duration;

use openraft::error::{
    InstallSnapshotError, NetworkError, RPCError, RaftError, RemoteError, Unreachable,
};
use openraft::network::RPCOption;
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse,
    VoteRequest, VoteResponse,
};
use openraft::{BasicNode, RaftNetwork, RaftNetworkFactory};
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

use crate::model::NodeId;
use crate::type_config::TypeConfig;
use crate::wire::{RpcRequest, RpcResponse, read_frame, write_frame};

/// Creates one [`TcpRaftClient`] per target; openraft keeps a client per replication stream, so
/// each stream reuses its own connection.
#[derive(Clone, Debug, Default)]
pub struct TcpNetworkFactory;

impl RaftNetworkFactory<TypeConfig> for TcpNetworkFactory {
    type Network = TcpRaftClient;

    async fn new_client(&mut self, target: NodeId, node: &BasicNode) -> TcpRaftClient {
        TcpRaftClient {
            target,
            node: node.clone(),
            conn: None,
        }
    }
}

/// A connection to one peer's Raft listener, opened lazily and dropped after any error.
pub struct TcpRaftClient {
    target: NodeId,
    node: BasicNode,
    conn: Option<TcpStream>,
}

/// Why a call failed before a response arrived.
#[derive(Debug)]
enum CallError {
    /// Could not connect: the peer is down; openraft backs off.
    Unreachable(io::Error),
    /// The connection broke or the deadline passed mid-call.
    Network(io::Error),
}

impl CallError {
    fn into_rpc<E: std::error::Error>(self) -> RPCError<NodeId, BasicNode, E> {
        match self {
            CallError::Unreachable(e) => RPCError::Unreachable(Unreachable::new(&e)),
            CallError::Network(e) => RPCError::Network(NetworkError::new(&e)),
        }
    }
}

fn timed_out(what: &str, addr: &str) -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, format!("{what} {addr} timed out"))
}

fn unexpected(resp: &RpcResponse) -> CallError {
    CallError::Network(unexpected_response(resp))
}

/// Connects to `addr` before `deadline`.
async fn connect(addr: &str, deadline: Instant) -> Result<TcpStream, CallError> {
    match timeout_at(deadline, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Raft RPCs are small request/response pairs: do not let Nagle delay them.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(CallError::Unreachable(e)),
        Err(_) => Err(CallError::Unreachable(timed_out("connecting to", addr))),
    }
}

/// Sends one request frame and reads its response frame before `deadline`.
async fn exchange(
    stream: &mut TcpStream,
    req: &RpcRequest,
    deadline: Instant,
    addr: &str,
) -> Result<RpcResponse, CallError> {
    let call = async {
        write_frame(stream, req).await?;
        read_frame::<_, RpcResponse>(stream).await?.ok_or_else(|| {
            io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed the connection")
        })
    };
    match timeout_at(deadline, call).await {
        Ok(Ok(resp)) => Ok(resp),
        Ok(Err(e)) => Err(CallError::Network(e)),
        Err(_) => Err(CallError::Network(timed_out("rpc to", addr))),
    }
}

impl TcpRaftClient {
    async fn call(&mut self, req: RpcRequest, ttl: Duration) -> Result<RpcResponse, CallError> {
        let deadline = Instant::now() + ttl;
        let addr = self.node.addr.clone();
        if let Some(mut stream) = self.conn.take() {
            match exchange(&mut stream, &req, deadline, &addr).await {
                Ok(resp) => {
                    self.conn = Some(stream);
                    return Ok(resp);
                }
                // A pooled connection may have been closed by a restarted peer: reconnect once.
                Err(CallError::Network(e)) if e.kind() != io::ErrorKind::TimedOut => {
                    tracing::debug!(target_node = self.target, %addr, error = %e, "pooled raft connection failed, reconnecting");
                }
                Err(e) => return Err(e),
            }
        }
        let mut stream = connect(&addr, deadline).await?;
        let resp = exchange(&mut stream, &req, deadline, &addr).await?;
        self.conn = Some(stream);
        Ok(resp)
    }

    fn remote<E: std::error::Error>(&self, e: E) -> RPCError<NodeId, BasicNode, E> {
        RPCError::RemoteError(RemoteError::new_with_node(
            self.target,
            self.node.clone(),
            e,
        ))
    }
}

impl RaftNetwork<TypeConfig> for TcpRaftClient {
    async fn append_entries(
        &mut self,
        rpc: AppendEntriesRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<AppendEntriesResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .call(RpcRequest::AppendEntries(rpc), option.hard_ttl())
            .await
            .map_err(CallError::into_rpc)?
        {
            RpcResponse::AppendEntries(Ok(resp)) => Ok(resp),
            RpcResponse::AppendEntries(Err(e)) => Err(self.remote(e)),
            other => Err(unexpected(&other).into_rpc()),
        }
    }

    async fn install_snapshot(
        &mut self,
        rpc: InstallSnapshotRequest<TypeConfig>,
        option: RPCOption,
    ) -> Result<
        InstallSnapshotResponse<NodeId>,
        RPCError<NodeId, BasicNode, RaftError<NodeId, InstallSnapshotError>>,
    > {
        match self
            .call(RpcRequest::InstallSnapshot(rpc), option.hard_ttl())
            .await
            .map_err(CallError::into_rpc)?
        {
            RpcResponse::InstallSnapshot(Ok(resp)) => Ok(resp),
            RpcResponse::InstallSnapshot(Err(e)) => Err(self.remote(e)),
            other => Err(unexpected(&other).into_rpc()),
        }
    }

    async fn vote(
        &mut self,
        rpc: VoteRequest<NodeId>,
        option: RPCOption,
    ) -> Result<VoteResponse<NodeId>, RPCError<NodeId, BasicNode, RaftError<NodeId>>> {
        match self
            .call(RpcRequest::Vote(rpc), option.hard_ttl())
            .await
            .map_err(CallError::into_rpc)?
        {
            RpcResponse::Vote(Ok(resp)) => Ok(resp),
            RpcResponse::Vote(Err(e)) => Err(self.remote(e)),
            other => Err(unexpected(&other).into_rpc()),
        }
    }
}

/// Sends one request to the peer at `addr` on a fresh connection and waits for its answer.
/// Connecting may take at most `connect_timeout` (a peer behind a network cut never answers
/// the SYN), the whole exchange until `deadline`. `Err` means the exchange failed; a forwarded
/// proposal may or may not have been applied, and retrying the same `Request` is safe.
pub(crate) async fn call_peer(
    addr: &str,
    req: &RpcRequest,
    connect_timeout: Duration,
    deadline: Instant,
) -> io::Result<RpcResponse> {
    let as_io = |e: CallError| match e {
        CallError::Unreachable(e) | CallError::Network(e) => e,
    };
    let connect_by = (Instant::now() + connect_timeout).min(deadline);
    let mut stream = connect(addr, connect_by).await.map_err(as_io)?;
    exchange(&mut stream, req, deadline, addr)
        .await
        .map_err(as_io)
}

/// The `unexpected response` error for a reply of the wrong variant.
pub(crate) fn unexpected_response(resp: &RpcResponse) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected response variant: {resp:?}"),
    )
}
