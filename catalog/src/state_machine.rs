//! `StateMachineStore`: applies committed entries to `CatalogState`, persists it in redb, and
//! publishes each applied version to readers (openraft `RaftStateMachine`).

use std::io::Cursor;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use openraft::storage::RaftStateMachine;
use openraft::{EntryPayload, OptionalSend, RaftSnapshotBuilder, Snapshot, StorageIOError};
use redb::{Database, ReadableDatabase, ReadableTable};
use tokio::sync::watch;

use crate::model::Response;
use crate::state::CatalogState;
use crate::storage::{
    DbError, KEY_SNAPSHOT_DATA, KEY_SNAPSHOT_META, KEY_STATE, SM, SNAPSHOT, decode, encode,
};
use crate::type_config::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

/// The catalog state machine.
///
/// Each apply batch builds the next state from a copy, writes it in one durable redb
/// transaction, and only then makes it current: after kill -9 the stored state and its
/// `last_applied` always agree, so no entry is lost or applied twice.
pub struct StateMachineStore {
    db: Arc<Database>,
    state: Arc<CatalogState>,
    tx: watch::Sender<Arc<CatalogState>>,
}

impl StateMachineStore {
    pub(crate) fn load(db: Arc<Database>) -> Result<Self, DbError> {
        let state = {
            let txn = db.begin_read()?;
            let table = txn.open_table(SM)?;
            match table.get(KEY_STATE)? {
                Some(v) => decode::<CatalogState>(v.value())?,
                None => CatalogState::default(),
            }
        };
        tracing::info!(
            applied_index = state.applied_index(),
            tables = state.tables.len(),
            "catalog state loaded"
        );
        let state = Arc::new(state);
        let (tx, _) = watch::channel(state.clone());
        Ok(StateMachineStore { db, state, tx })
    }

    /// A receiver of every applied version. Holding a version pins it; nothing is locked.
    pub fn subscribe(&self) -> watch::Receiver<Arc<CatalogState>> {
        self.tx.subscribe()
    }

    /// The current applied state.
    pub fn state(&self) -> Arc<CatalogState> {
        self.state.clone()
    }

    fn persist(&self, state: &CatalogState) -> Result<(), DbError> {
        let bytes = encode(state)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(SM)?;
            table.insert(KEY_STATE, bytes.as_slice())?;
        }
        txn.commit()?;
        Ok(())
    }

    fn publish(&mut self, next: CatalogState) {
        self.state = Arc::new(next);
        self.tx.send_replace(self.state.clone());
    }

    fn install(&mut self, meta: &SnapshotMeta, data: Vec<u8>) -> Result<(), DbError> {
        let mut state: CatalogState = decode(&data)?;
        // The meta is authoritative for what the snapshot covers.
        state.last_applied = meta.last_log_id;
        state.last_membership = meta.last_membership.clone();
        let state_bytes = encode(&state)?;
        let meta_bytes = encode(meta)?;
        // State and snapshot change in one transaction: a crash leaves either the old pair or the new.
        let txn = self.db.begin_write()?;
        {
            let mut sm = txn.open_table(SM)?;
            sm.insert(KEY_STATE, state_bytes.as_slice())?;
            let mut snap = txn.open_table(SNAPSHOT)?;
            snap.insert(KEY_SNAPSHOT_META, meta_bytes.as_slice())?;
            snap.insert(KEY_SNAPSHOT_DATA, data.as_slice())?;
        }
        txn.commit()?;
        tracing::info!(last_log_id = ?meta.last_log_id, snapshot_id = %meta.snapshot_id, "snapshot installed");
        self.publish(state);
        Ok(())
    }
}

fn read_snapshot(db: &Database) -> Result<Option<Snapshot<TypeConfig>>, DbError> {
    let txn = db.begin_read()?;
    let table = txn.open_table(SNAPSHOT)?;
    let (Some(meta), Some(data)) = (table.get(KEY_SNAPSHOT_META)?, table.get(KEY_SNAPSHOT_DATA)?)
    else {
        return Ok(None);
    };
    let meta: SnapshotMeta = decode(meta.value())?;
    let data = data.value().to_vec();
    Ok(Some(Snapshot {
        meta,
        snapshot: Box::new(Cursor::new(data)),
    }))
}

/// Builds a snapshot of one pinned state version; runs concurrently with `apply`.
pub struct CatalogSnapshotBuilder {
    db: Arc<Database>,
    state: Arc<CatalogState>,
}

impl CatalogSnapshotBuilder {
    fn build(&self) -> Result<Snapshot<TypeConfig>, DbError> {
        let data = encode(&*self.state)?;
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let snapshot_id = match self.state.last_applied {
            Some(l) => format!("{}-{}-{nanos}", l.leader_id, l.index),
            None => format!("none-{nanos}"),
        };
        let meta = SnapshotMeta {
            last_log_id: self.state.last_applied,
            last_membership: self.state.last_membership.clone(),
            snapshot_id,
        };
        let meta_bytes = encode(&meta)?;
        let txn = self.db.begin_write()?;
        {
            let mut table = txn.open_table(SNAPSHOT)?;
            // A snapshot installed from the leader meanwhile may be newer: never go back.
            let current: Option<SnapshotMeta> = match table.get(KEY_SNAPSHOT_META)? {
                Some(v) => Some(decode(v.value())?),
                None => None,
            };
            let newer_exists = current
                .as_ref()
                .is_some_and(|c| c.last_log_id > meta.last_log_id);
            if !newer_exists {
                table.insert(KEY_SNAPSHOT_META, meta_bytes.as_slice())?;
                table.insert(KEY_SNAPSHOT_DATA, data.as_slice())?;
            }
        }
        txn.commit()?;
        tracing::info!(last_log_id = ?meta.last_log_id, bytes = data.len(), "snapshot built");
        Ok(Snapshot {
            meta,
            snapshot: Box::new(Cursor::new(data)),
        })
    }
}

impl RaftSnapshotBuilder<TypeConfig> for CatalogSnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        self.build()
            .map_err(|e| StorageIOError::write_snapshot(None, &e).into())
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = CatalogSnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        Ok((self.state.last_applied, self.state.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Response>, StorageError>
    where
        I: IntoIterator<Item = Entry> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut next = (*self.state).clone();
        let mut replies = Vec::new();
        for entry in entries {
            next.last_applied = Some(entry.log_id);
            let reply = match entry.payload {
                EntryPayload::Blank => Response::Empty,
                EntryPayload::Normal(req) => next.apply(entry.log_id.index, &req),
                EntryPayload::Membership(m) => {
                    next.last_membership = StoredMembership::new(Some(entry.log_id), m);
                    Response::Empty
                }
            };
            replies.push(reply);
        }
        if replies.is_empty() {
            return Ok(replies);
        }
        self.persist(&next)
            .map_err(|e| StorageIOError::write_state_machine(&e))?;
        tracing::debug!(
            applied_index = next.applied_index(),
            entries = replies.len(),
            "entries applied"
        );
        self.publish(next);
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        CatalogSnapshotBuilder {
            db: self.db.clone(),
            state: self.state.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        self.install(meta, data)
            .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e).into())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        read_snapshot(&self.db).map_err(|e| StorageIOError::read_snapshot(None, &e).into())
    }
}

#[cfg(test)]
mod suite {
    //! openraft's storage conformance suite against the redb storage.

    use openraft::testing::{StoreBuilder, Suite};

    use super::*;
    use crate::log_store::LogStore;
    use crate::storage::open_storage;

    struct RedbBuilder;

    impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for RedbBuilder {
        async fn build(
            &self,
        ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
            let dir = tempfile::tempdir().expect("tempdir");
            let (log, sm) = open_storage(dir.path())
                .await
                .map_err(|e| StorageError::from(StorageIOError::write(&e)))?;
            Ok((dir, log, sm))
        }
    }

    #[test]
    fn openraft_storage_suite() {
        // The suite drives its own runtimes; run it on a thread so a hang fails the test.
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(Suite::test_all(RedbBuilder).map_err(|e| e.to_string()));
        });
        match rx.recv_timeout(std::time::Duration::from_secs(300)) {
            Ok(result) => result.expect("openraft storage suite"),
            Err(e) => panic!("openraft storage suite did not finish: {e}"),
        }
    }

    fn create_entry(index: u64, name: &str) -> Entry {
        use crate::model::{Command, Request, TableDef};
        let table = TableDef {
            id: 0,
            name: name.into(),
            schema_ipc: vec![],
            distribution: None,
            shard_count: 1,
            replication: 1,
            placement: vec![vec![7]],
            created_index: 0,
        };
        Entry {
            log_id: openraft::testing::log_id(1, 1, index),
            payload: EntryPayload::Normal(Request {
                client_id: "c".into(),
                seq: index,
                command: Command::CreateTable {
                    table,
                    if_not_exists: false,
                },
            }),
        }
    }

    #[tokio::test]
    async fn applied_state_survives_reopen_and_snapshot_transfer() {
        tokio::time::timeout(std::time::Duration::from_secs(60), async {
            let dir = tempfile::tempdir().unwrap();
            {
                let (_log, mut sm) = open_storage(dir.path()).await.unwrap();
                let mut rx = sm.subscribe();
                let replies = sm
                    .apply([create_entry(1, "a"), create_entry(2, "b")])
                    .await
                    .unwrap();
                assert!(
                    replies
                        .iter()
                        .all(|r| matches!(r, Response::TableCreated { created: true, .. }))
                );
                // Readers saw the new version.
                assert_eq!(rx.borrow_and_update().applied_index(), 2);
            }
            let (_log, mut sm) = open_storage(dir.path()).await.unwrap();
            let (applied, _) = sm.applied_state().await.unwrap();
            assert_eq!(applied.map(|l| l.index), Some(2));
            assert!(sm.state().table("a").is_some() && sm.state().table("b").is_some());
            // Re-delivery of an applied request does not apply it again.
            let again = sm.apply([create_entry(2, "b")]).await.unwrap();
            assert!(matches!(
                again[0],
                Response::TableCreated { created: true, .. }
            ));
            assert_eq!(sm.state().tables.len(), 2);

            let snap = sm
                .get_snapshot_builder()
                .await
                .build_snapshot()
                .await
                .unwrap();
            let other = tempfile::tempdir().unwrap();
            let (_log2, mut sm2) = open_storage(other.path()).await.unwrap();
            let mut rx2 = sm2.subscribe();
            sm2.install_snapshot(&snap.meta, snap.snapshot)
                .await
                .unwrap();
            assert_eq!(sm2.state().tables, sm.state().tables);
            assert_eq!(sm2.state().next_id, sm.state().next_id);
            assert_eq!(rx2.borrow_and_update().tables.len(), 2);
        })
        .await
        .expect("test timed out");
    }
}
