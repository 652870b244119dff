//! `LogStore`: the Raft log, vote and committed id in redb (openraft `RaftLogStorage`).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::Arc;

use openraft::storage::{LogFlushed, RaftLogStorage};
use openraft::{LogState, OptionalSend, RaftLogReader, StorageIOError, Vote};
use redb::{Database, ReadableDatabase, ReadableTable};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::model::NodeId;
use crate::storage::{
    DbError, KEY_COMMITTED, KEY_LAST_PURGED, KEY_VOTE, LOGS, META, decode, encode,
};
use crate::type_config::{Entry, LogId, StorageError, TypeConfig};

/// The Raft log store. Cheap to clone: clones share the database and serve as log readers
/// (redb read transactions see a consistent committed version, so readers need no lock).
#[derive(Clone)]
pub struct LogStore {
    db: Arc<Database>,
}

impl LogStore {
    pub(crate) fn new(db: Arc<Database>) -> Self {
        LogStore { db }
    }

    fn read_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, DbError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(META)?;
        match table.get(key)? {
            Some(v) => Ok(Some(decode(v.value())?)),
            None => Ok(None),
        }
    }

    /// Writes one meta key in its own durable transaction.
    fn write_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<(), DbError> {
        let bytes = encode(value)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(META)?;
            table.insert(key, bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn read_range(&self, start: u64, end: u64) -> Result<Vec<Entry>, DbError> {
        if start >= end {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        let mut entries = Vec::new();
        for item in table.range(start..end)? {
            let (_, v) = item?;
            entries.push(decode(v.value())?);
        }
        Ok(entries)
    }

    fn log_state(&self) -> Result<LogState<TypeConfig>, DbError> {
        let last_purged: Option<LogId> = self.read_meta(KEY_LAST_PURGED)?;
        let txn = self.db.begin_read()?;
        let table = txn.open_table(LOGS)?;
        let last = match table.last()? {
            Some((_, v)) => Some(decode::<Entry>(v.value())?.log_id),
            None => None,
        };
        Ok(LogState {
            last_purged_log_id: last_purged,
            last_log_id: last.or(last_purged),
        })
    }

    fn append_all(&self, entries: impl Iterator<Item = Entry>) -> Result<Option<u64>, DbError> {
        let txn = self.db.begin_write()?;
        let mut last = None;
        {
            let mut table = txn.open_table(LOGS)?;
            for entry in entries {
                let bytes = encode(&entry)?;
                table.insert(entry.log_id.index, bytes.as_slice())?;
                last = Some(entry.log_id.index);
            }
        }
        // redb commits with `Durability::Immediate` by default: fsynced when this returns.
        txn.commit()?;
        Ok(last)
    }

    fn truncate_since(&self, index: u64) -> Result<(), DbError> {
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(LOGS)?;
            table.retain_in(index.., |_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn purge_upto(&self, log_id: LogId) -> Result<(), DbError> {
        let bytes = encode(&log_id)?;
        let txn = self.db.begin_write()?;
        {
            // Record the purge point first, in the same transaction, so the log never looks
            // empty-but-unpurged after a crash.
            let mut meta = txn.open_table(META)?;
            meta.insert(KEY_LAST_PURGED, bytes.as_slice())?;
            let mut table = txn.open_table(LOGS)?;
            table.retain_in(..=log_id.index, |_, _| false)?;
        }
        txn.commit()?;
        Ok(())
    }
}

fn bounds(range: &impl RangeBounds<u64>) -> (u64, u64) {
    let start = match range.start_bound() {
        Bound::Included(&s) => s,
        Bound::Excluded(&s) => s.saturating_add(1),
        Bound::Unbounded => 0,
    };
    let end = match range.end_bound() {
        Bound::Included(&e) => e.saturating_add(1),
        Bound::Excluded(&e) => e,
        Bound::Unbounded => u64::MAX,
    };
    (start, end)
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        let (start, end) = bounds(&range);
        self.read_range(start, end)
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        self.log_state()
            .map_err(|e| StorageIOError::read_logs(&e).into())
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_meta(KEY_VOTE, vote)
            .map_err(|e| StorageIOError::write_vote(&e).into())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(KEY_VOTE)
            .map_err(|e| StorageIOError::read_vote(&e).into())
    }

    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        self.write_meta(KEY_COMMITTED, &committed)
            .map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        let committed: Option<Option<LogId>> = self
            .read_meta(KEY_COMMITTED)
            .map_err(|e| StorageIOError::read(&e))?;
        Ok(committed.flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let last = self
            .append_all(entries.into_iter())
            .map_err(|e| StorageIOError::write_logs(&e))?;
        tracing::trace!(last_index = ?last, "log entries appended");
        // The commit above was durable, so the entries are on disk now.
        callback.log_io_completed(Ok(()));
        Ok(())
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(since = log_id.index, "truncating log");
        self.truncate_since(log_id.index)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(upto = log_id.index, "purging log");
        self.purge_upto(log_id)
            .map_err(|e| StorageIOError::write_logs(&e).into())
    }
}
