//! The catalog's data model: tables, shard files, executors, and the commands that change them.
//!
//! Everything here is metadata. Arrow schemas and column statistics are opaque bytes encoded by
//! `shoal-flight`, which keeps this crate free of Arrow and DataFusion.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Raft node id of a coordinator.
pub type NodeId = u64;
/// Catalog-assigned id of an executor; stable across executor restarts on the same data dir.
pub type ExecutorId = u64;
/// Catalog-assigned id of a write transaction.
pub type TxnId = u64;

/// A table as the catalog knows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableDef {
    /// Unique, never reused (assigned by the state machine; ignored in `CreateTable`).
    pub id: u64,
    /// Lower-case table name, unique among live tables.
    pub name: String,
    /// Arrow schema, IPC-encoded by shoal-flight.
    pub schema_ipc: Vec<u8>,
    /// Distribution column. `None`: a small table replicated to every executor.
    pub distribution: Option<String>,
    /// Number of hash buckets (1 for replicated tables).
    pub shard_count: u32,
    /// Copies of every shard file.
    pub replication: u32,
    /// Owner executors per bucket (`placement.len() == shard_count`). Every file of bucket `i`
    /// lives on `placement[i]`, so co-partitioned tables with the same shard count stay local.
    pub placement: Vec<Vec<ExecutorId>>,
    /// Raft log index of the command that created the table (assigned by the state machine).
    pub created_index: u64,
}

/// Per-column statistics of one shard file; `min`/`max` are encoded by shoal-flight.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ColumnStats {
    pub null_count: u64,
    pub min: Option<Vec<u8>>,
    pub max: Option<Vec<u8>>,
}

/// One Parquet file of one bucket of a table, with its statistics and owners.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFile {
    /// Unique id (assigned by the state machine at commit; ignored in `CommitWrite`).
    pub id: u64,
    pub table_id: u64,
    pub bucket: u32,
    /// Path relative to an executor's data dir.
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// One entry per column of the table schema, in schema order.
    pub column_stats: Vec<ColumnStats>,
    /// Executors holding a durable copy.
    pub owners: Vec<ExecutorId>,
    /// The write that created it (assigned by the state machine at commit).
    pub txn: TxnId,
}

/// An executor known to the catalog.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExecutorInfo {
    pub id: ExecutorId,
    /// Identity of the executor's data dir (a uuid it persists), so a restart keeps its id.
    pub data_id: String,
    /// Flight endpoint, e.g. `http://127.0.0.1:50061`.
    pub address: String,
    /// Free-form labels such as `region` and `zone`.
    pub labels: BTreeMap<String, String>,
}

/// A coordinator that has ever been part of the catalog's Raft group. Entries are never
/// deleted: a retired id stays here so that it can never be used again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinatorInfo {
    pub node_id: NodeId,
    /// Flight SQL endpoint clients and executors use, e.g. `http://10.0.0.1:50051`.
    pub flight_address: String,
    /// Raft `host:port`.
    pub raft_address: String,
    /// Removed from the Raft group by `RetireCoordinator`; the id stays taken.
    pub retired: bool,
}

/// A write that has begun and not yet committed or aborted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTxn {
    pub id: TxnId,
    pub table_id: u64,
    pub table: String,
    pub begun_index: u64,
}

/// A change to the catalog, proposed through Raft.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    CreateTable {
        table: TableDef,
        if_not_exists: bool,
    },
    DropTable {
        name: String,
        if_exists: bool,
    },
    RegisterExecutor {
        data_id: String,
        address: String,
        labels: BTreeMap<String, String>,
    },
    BeginWrite {
        table: String,
    },
    /// Makes all `files` visible at once. With `replace`, the table's earlier files are
    /// dropped in the same step (CREATE TABLE AS / overwrite).
    CommitWrite {
        txn: TxnId,
        files: Vec<ShardFile>,
        replace: bool,
    },
    AbortWrite {
        txn: TxnId,
    },
    /// A coordinator announces its addresses once it holds the catalog; re-announcing
    /// updates them. Refused for a retired id.
    RegisterCoordinator {
        node_id: NodeId,
        flight_address: String,
        raft_address: String,
    },
    /// Marks a coordinator removed from the Raft group; its id can never join again.
    RetireCoordinator {
        node_id: NodeId,
    },
}

/// A command with the (client, sequence) pair that makes a retried proposal apply once.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub client_id: String,
    pub seq: u64,
    pub command: Command,
}

/// The deterministic outcome of applying a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// Membership entries and blank entries.
    Empty,
    TableCreated {
        id: u64,
        created: bool,
    },
    /// `table` is `None` when `if_exists` found nothing; `files` are now garbage.
    TableDropped {
        table: Option<TableDef>,
        files: Vec<ShardFile>,
    },
    ExecutorRegistered {
        id: ExecutorId,
    },
    WriteBegun {
        txn: TxnId,
        table: TableDef,
    },
    /// `replaced` are the files the commit made garbage (only with `replace`).
    WriteCommitted {
        files: Vec<ShardFile>,
        replaced: Vec<ShardFile>,
    },
    WriteAborted,
    CoordinatorRegistered,
    CoordinatorRetired,
    Rejected(Rejection),
}

/// Why the state machine refused a command. Deterministic: every replica refuses alike.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    #[error("table '{0}' already exists")]
    TableExists(String),
    #[error("table '{0}' does not exist")]
    TableNotFound(String),
    #[error("write transaction {0} is not open")]
    UnknownTxn(TxnId),
    #[error("table '{0}' was dropped or replaced while the write was running")]
    TableChanged(String),
    #[error("coordinator id {0} was removed from the cluster and can never be used again")]
    CoordinatorRetired(NodeId),
    #[error("invalid command: {0}")]
    Invalid(String),
}
