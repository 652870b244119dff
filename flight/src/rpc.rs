//! Internal RPC messages between coordinators and executors, carried in Flight descriptors,
//! tickets and actions as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize, de::DeserializeOwned};
use shoal_catalog::{ColumnStats, ExecutorId};
use tonic::Status;

/// Executor -> coordinator: join the cluster (idempotent per data dir).
pub const ACTION_REGISTER_EXECUTOR: &str = "shoal.register_executor";
/// Executor -> coordinator: still alive.
pub const ACTION_HEARTBEAT: &str = "shoal.heartbeat";
/// Admin -> coordinator: copy the catalog to a new coordinator and make it a voter.
pub const ACTION_ADD_COORDINATOR: &str = "shoal.add_coordinator";
/// Admin -> coordinator: remove a coordinator from the group and retire its id.
pub const ACTION_REMOVE_COORDINATOR: &str = "shoal.remove_coordinator";
/// Admin -> coordinator: this coordinator's view of the catalog group.
pub const ACTION_CLUSTER_STATUS: &str = "shoal.cluster_status";
/// Coordinator -> executor: remove shard files that no committed version references.
pub const ACTION_DELETE_FILES: &str = "shoal.delete_files";
/// Prefix of a `DoGet` ticket that scans shard files on an executor.
pub const SCAN_TICKET_PREFIX: &[u8] = b"shoal.scan:";
/// Prefix of a `DoPut` descriptor command that writes one shard file on an executor.
pub const WRITE_DESCRIPTOR_PREFIX: &[u8] = b"shoal.write:";
/// Prefix of a `DoGet` ticket a client redeems at an executor for one task of a query's final
/// stage (the multi-endpoint results of Flight SQL).
pub const EXPORT_TICKET_PREFIX: &[u8] = b"shoal.export:";
/// Executor -> coordinator: a client is redeeming this exported task; refused when the ticket
/// is unknown, expired or already redeemed.
pub const ACTION_REDEEM_EXPORT: &str = "shoal.redeem_export";
/// Executor -> coordinator: the client finished (or abandoned) reading this exported task.
pub const ACTION_EXPORT_READ: &str = "shoal.export_read";

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterExecutorRequest {
    pub data_id: String,
    pub address: String,
    pub labels: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RegisterExecutorResponse {
    pub executor_id: ExecutorId,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct HeartbeatRequest {
    pub executor_id: ExecutorId,
    pub address: String,
}

/// The coordinator's answer to a heartbeat: the Flight addresses of every active
/// coordinator, so that executors find coordinators added after they started.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct HeartbeatResponse {
    #[serde(default)]
    pub coordinators: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AddCoordinatorRequest {
    pub node_id: u64,
    /// The new coordinator's Raft `host:port`.
    pub raft_address: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RemoveCoordinatorRequest {
    pub node_id: u64,
}

/// Writes the batches of a `DoPut` as one Parquet file at `path` (relative to the data dir).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteShardRequest {
    pub path: String,
    pub schema_ipc: Vec<u8>,
}

/// What an executor reports after a shard file is durable.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct WriteShardResponse {
    pub rows: u64,
    pub bytes: u64,
    pub column_stats: Vec<ColumnStats>,
}

/// Scans shard files on the executor that holds them.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ScanShardRequest {
    pub paths: Vec<String>,
    /// Schema of the stored files (the table schema).
    pub schema_ipc: Vec<u8>,
    pub projection: Option<Vec<usize>>,
    /// The scan's predicate over the table schema (`scan_predicate::encode_predicate`), for
    /// skipping row groups.
    #[serde(default)]
    pub predicate: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeleteFilesRequest {
    pub paths: Vec<String>,
}

/// One task of a query's final stage, read by a client straight from the executor running it.
/// It only names the task: what to run comes from the coordinator when the ticket is redeemed,
/// so a client cannot point an executor at another stage or coordinator by editing it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportTicket {
    /// The coordinator's id for the exported query.
    pub export_id: String,
    pub task: usize,
    /// The Flight address of the coordinator holding the query open (the executor only
    /// contacts coordinators it knows).
    pub coordinator: String,
}

/// Names one exported task to the coordinator that holds its query.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ExportTaskRequest {
    pub export_id: String,
    pub task: usize,
}

/// The coordinator's answer to a redemption: the task to read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExportedTask {
    /// datafusion-distributed's query id (a UUID).
    pub query_id: String,
    pub stage: usize,
    pub task: usize,
    /// Output partitions of the task, all read by one redemption.
    pub partitions: usize,
}

/// Encodes a message with a prefix.
pub fn encode<T: Serialize>(prefix: &[u8], msg: &T) -> Vec<u8> {
    let mut out = prefix.to_vec();
    out.extend(serde_json::to_vec(msg).expect("RPC messages always serialize"));
    out
}

/// Decodes a message written by [`encode`]; `None` when the prefix does not match.
pub fn decode<T: DeserializeOwned>(prefix: &[u8], bytes: &[u8]) -> Option<Result<T, Status>> {
    let body = bytes.strip_prefix(prefix)?;
    Some(
        serde_json::from_slice(body)
            .map_err(|e| Status::invalid_argument(format!("malformed internal request: {e}"))),
    )
}
