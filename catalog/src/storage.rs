//! The one redb database file (`<data_dir>/catalog.redb`) behind the Raft log and the state machine.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use redb::{Database, TableDefinition};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::CatalogError;
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "catalog.redb";

/// Raft log entries: index -> bincode `Entry`.
pub(crate) const LOGS: TableDefinition<u64, &[u8]> = TableDefinition::new("raft_log");
/// Raft log metadata: `vote`, `committed`, `last_purged` -> bincode.
pub(crate) const META: TableDefinition<&str, &[u8]> = TableDefinition::new("raft_meta");
/// The applied catalog: `state` -> bincode `CatalogState`.
pub(crate) const SM: TableDefinition<&str, &[u8]> = TableDefinition::new("state_machine");
/// The current snapshot: `meta` -> bincode `SnapshotMeta`, `data` -> snapshot bytes.
pub(crate) const SNAPSHOT: TableDefinition<&str, &[u8]> = TableDefinition::new("snapshot");

pub(crate) const KEY_VOTE: &str = "vote";
pub(crate) const KEY_COMMITTED: &str = "committed";
pub(crate) const KEY_LAST_PURGED: &str = "last_purged";
pub(crate) const KEY_STATE: &str = "state";
pub(crate) const KEY_SNAPSHOT_META: &str = "meta";
pub(crate) const KEY_SNAPSHOT_DATA: &str = "data";

/// How long `open_storage` keeps retrying while a previous instance in this process still
/// holds the database file (its Raft tasks are winding down after a shutdown).
const OPEN_RETRY_FOR: Duration = Duration::from_secs(10);

/// A failure inside the storage layer, before it is mapped to openraft's or the crate's error.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DbError {
    #[error(transparent)]
    Redb(#[from] redb::Error),
    #[error("encoding: {0}")]
    Codec(#[from] bincode::Error),
}

macro_rules! redb_into_db_error {
    ($($t:ty),*) => {$(
        impl From<$t> for DbError {
            fn from(e: $t) -> Self {
                DbError::Redb(e.into())
            }
        }
    )*};
}
redb_into_db_error!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<DbError> for CatalogError {
    fn from(e: DbError) -> Self {
        match e {
            DbError::Redb(e) => CatalogError::Storage(e.to_string()),
            DbError::Codec(e) => CatalogError::Codec(e.to_string()),
        }
    }
}

pub(crate) fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, DbError> {
    Ok(bincode::serialize(v)?)
}

pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DbError> {
    Ok(bincode::deserialize(bytes)?)
}

/// Opens (or creates) `<data_dir>/catalog.redb` and returns the Raft log store and the state
/// machine, which share the database.
pub async fn open_storage(data_dir: &Path) -> Result<(LogStore, StateMachineStore), CatalogError> {
    std::fs::create_dir_all(data_dir)?;
    let db = Arc::new(open_database(&data_dir.join(DB_FILE)).await?);
    let log_store = LogStore::new(db.clone());
    let state_machine = StateMachineStore::load(db)?;
    Ok((log_store, state_machine))
}

async fn open_database(path: &Path) -> Result<Database, CatalogError> {
    let deadline = tokio::time::Instant::now() + OPEN_RETRY_FOR;
    let db = loop {
        match Database::create(path) {
            Ok(db) => break db,
            Err(redb::DatabaseError::DatabaseAlreadyOpen)
                if tokio::time::Instant::now() < deadline =>
            {
                tracing::debug!(path = %path.display(), "catalog database still open, retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                return Err(CatalogError::Storage(format!(
                    "opening {}: {e}",
                    path.display()
                )));
            }
        }
    };
    // Create every table up front so that read transactions never meet a missing table.
    let txn = db.begin_write().map_err(DbError::from)?;
    {
        txn.open_table(LOGS).map_err(DbError::from)?;
        txn.open_table(META).map_err(DbError::from)?;
        txn.open_table(SM).map_err(DbError::from)?;
        txn.open_table(SNAPSHOT).map_err(DbError::from)?;
    }
    txn.commit().map_err(DbError::from)?;
    tracing::info!(path = %path.display(), "catalog database open");
    Ok(db)
}
