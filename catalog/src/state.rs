//! `CatalogState`: the replicated catalog contents and the deterministic `apply` of every command.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::model::{
    Command, CoordinatorInfo, ExecutorId, ExecutorInfo, NodeId, OpenTxn, Rejection, Request,
    Response, ShardFile, TableDef, TxnId,
};
use crate::type_config::{LogId, StoredMembership};

/// The catalog as of one applied log index. Every replica that applies the same log reaches the
/// same value, so nothing here may depend on time, randomness or the local node.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CatalogState {
    /// Live tables by name.
    pub tables: BTreeMap<String, TableDef>,
    /// Committed shard files by table id.
    pub files: BTreeMap<u64, Vec<ShardFile>>,
    pub executors: BTreeMap<ExecutorId, ExecutorInfo>,
    /// Every coordinator that ever announced itself, retired ones included.
    pub coordinators: BTreeMap<NodeId, CoordinatorInfo>,
    pub open_txns: BTreeMap<TxnId, OpenTxn>,
    /// One counter for table, file, txn and executor ids, so no id is ever reused, not even
    /// across kinds (a stale id can then never name a different object).
    pub next_id: u64,
    /// Last sequence number and response per client id: a retried request is answered from
    /// here instead of being applied twice.
    pub sessions: BTreeMap<String, (u64, Response)>,
    pub last_applied: Option<LogId>,
    pub last_membership: StoredMembership,
}

impl CatalogState {
    /// The live table called `name`.
    pub fn table(&self, name: &str) -> Option<&TableDef> {
        self.tables.get(name)
    }

    /// The committed files of a table (empty for an unknown table).
    pub fn table_files(&self, table_id: u64) -> &[ShardFile] {
        self.files.get(&table_id).map(Vec::as_slice).unwrap_or(&[])
    }

    /// All registered executors, by id.
    pub fn executors(&self) -> &BTreeMap<ExecutorId, ExecutorInfo> {
        &self.executors
    }

    /// The live table with this id, if any.
    pub fn table_by_id(&self, table_id: u64) -> Option<&TableDef> {
        self.tables.values().find(|t| t.id == table_id)
    }

    /// The applied log index (0 before anything was applied).
    pub fn applied_index(&self) -> u64 {
        self.last_applied.map(|l| l.index).unwrap_or(0)
    }

    /// Applies one client request at log `index`. A request whose `seq` is not newer than the
    /// client's last one returns the stored response without applying again (the client only
    /// retries its latest request, so an older seq can only be a duplicate delivery).
    /// An empty `client_id` opts out of de-duplication.
    pub fn apply(&mut self, index: u64, req: &Request) -> Response {
        if !req.client_id.is_empty()
            && let Some((seq, resp)) = self.sessions.get(&req.client_id)
            && req.seq <= *seq
        {
            tracing::debug!(client = %req.client_id, seq = req.seq, last_seq = *seq, "duplicate request, returning stored response");
            return resp.clone();
        }
        let resp = self.apply_command(index, &req.command);
        if !req.client_id.is_empty() {
            self.sessions
                .insert(req.client_id.clone(), (req.seq, resp.clone()));
        }
        resp
    }

    fn fresh_id(&mut self) -> u64 {
        // Ids start at 1 so that 0 can mean "unassigned" in commands.
        self.next_id = self.next_id.max(1);
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn apply_command(&mut self, index: u64, command: &Command) -> Response {
        match command {
            Command::CreateTable {
                table,
                if_not_exists,
            } => self.create_table(index, table, *if_not_exists),
            Command::DropTable { name, if_exists } => self.drop_table(name, *if_exists),
            Command::RegisterExecutor {
                data_id,
                address,
                labels,
            } => self.register_executor(data_id, address, labels),
            Command::BeginWrite { table } => self.begin_write(index, table),
            Command::CommitWrite {
                txn,
                files,
                replace,
            } => self.commit_write(*txn, files, *replace),
            Command::AbortWrite { txn } => self.abort_write(*txn),
            Command::RegisterCoordinator {
                node_id,
                flight_address,
                raft_address,
            } => self.register_coordinator(*node_id, flight_address, raft_address),
            Command::RetireCoordinator { node_id } => self.retire_coordinator(*node_id),
        }
    }

    fn register_coordinator(
        &mut self,
        node_id: NodeId,
        flight_address: &str,
        raft_address: &str,
    ) -> Response {
        if self.coordinators.get(&node_id).is_some_and(|c| c.retired) {
            return Response::Rejected(Rejection::CoordinatorRetired(node_id));
        }
        self.coordinators.insert(
            node_id,
            CoordinatorInfo {
                node_id,
                flight_address: flight_address.to_string(),
                raft_address: raft_address.to_string(),
                retired: false,
            },
        );
        Response::CoordinatorRegistered
    }

    fn retire_coordinator(&mut self, node_id: NodeId) -> Response {
        let entry = self
            .coordinators
            .entry(node_id)
            .or_insert_with(|| CoordinatorInfo {
                node_id,
                flight_address: String::new(),
                raft_address: String::new(),
                retired: true,
            });
        entry.retired = true;
        tracing::info!(node_id, "coordinator retired");
        Response::CoordinatorRetired
    }

    /// Flight addresses of the coordinators that are not retired, by node id.
    pub fn active_coordinators(&self) -> impl Iterator<Item = &CoordinatorInfo> {
        self.coordinators.values().filter(|c| !c.retired)
    }

    fn create_table(&mut self, index: u64, table: &TableDef, if_not_exists: bool) -> Response {
        if table.name.is_empty() {
            return invalid("table name must not be empty");
        }
        if let Some(existing) = self.tables.get(&table.name) {
            if if_not_exists {
                return Response::TableCreated {
                    id: existing.id,
                    created: false,
                };
            }
            return Response::Rejected(Rejection::TableExists(table.name.clone()));
        }
        if table.shard_count < 1 {
            return invalid(format!("table '{}' needs at least one shard", table.name));
        }
        if table.placement.len() != table.shard_count as usize {
            return invalid(format!(
                "table '{}' has {} shards but placement for {}",
                table.name,
                table.shard_count,
                table.placement.len()
            ));
        }
        let id = self.fresh_id();
        let mut def = table.clone();
        def.id = id;
        def.created_index = index;
        tracing::info!(table = %def.name, table_id = id, shards = def.shard_count, index, "table created");
        self.tables.insert(def.name.clone(), def);
        Response::TableCreated { id, created: true }
    }

    fn drop_table(&mut self, name: &str, if_exists: bool) -> Response {
        let Some(table) = self.tables.remove(name) else {
            if if_exists {
                return Response::TableDropped {
                    table: None,
                    files: Vec::new(),
                };
            }
            return Response::Rejected(Rejection::TableNotFound(name.to_string()));
        };
        let files = self.files.remove(&table.id).unwrap_or_default();
        // Writes into the dropped table can never commit; forget them now.
        self.open_txns.retain(|_, t| t.table_id != table.id);
        tracing::info!(table = %table.name, table_id = table.id, files = files.len(), "table dropped");
        Response::TableDropped {
            table: Some(table),
            files,
        }
    }

    fn register_executor(
        &mut self,
        data_id: &str,
        address: &str,
        labels: &BTreeMap<String, String>,
    ) -> Response {
        if data_id.is_empty() {
            return invalid("executor data_id must not be empty");
        }
        if let Some(existing) = self.executors.values_mut().find(|e| e.data_id == data_id) {
            existing.address = address.to_string();
            existing.labels = labels.clone();
            return Response::ExecutorRegistered { id: existing.id };
        }
        let id = self.fresh_id();
        self.executors.insert(
            id,
            ExecutorInfo {
                id,
                data_id: data_id.to_string(),
                address: address.to_string(),
                labels: labels.clone(),
            },
        );
        tracing::info!(executor_id = id, data_id, address, "executor registered");
        Response::ExecutorRegistered { id }
    }

    fn begin_write(&mut self, index: u64, table: &str) -> Response {
        let Some(def) = self.tables.get(table).cloned() else {
            return Response::Rejected(Rejection::TableNotFound(table.to_string()));
        };
        let txn = self.fresh_id();
        self.open_txns.insert(
            txn,
            OpenTxn {
                id: txn,
                table_id: def.id,
                table: def.name.clone(),
                begun_index: index,
            },
        );
        Response::WriteBegun { txn, table: def }
    }

    fn commit_write(&mut self, txn: TxnId, files: &[ShardFile], replace: bool) -> Response {
        let Some(open) = self.open_txns.get(&txn).cloned() else {
            return Response::Rejected(Rejection::UnknownTxn(txn));
        };
        let live = self.tables.get(&open.table);
        let Some(def) = live.filter(|t| t.id == open.table_id) else {
            // The table was dropped (and maybe re-created): this write can never commit.
            self.open_txns.remove(&txn);
            return Response::Rejected(Rejection::TableChanged(open.table));
        };
        if let Some(bad) = files.iter().find(|f| f.bucket >= def.shard_count) {
            // Leave the txn open: the caller decides whether to retry or abort.
            return invalid(format!(
                "file '{}' names bucket {} of table '{}', which has {} shards",
                bad.path, bad.bucket, def.name, def.shard_count
            ));
        }
        let mut committed = Vec::with_capacity(files.len());
        for f in files {
            let mut f = f.clone();
            f.id = self.fresh_id();
            f.table_id = open.table_id;
            f.txn = txn;
            committed.push(f);
        }
        let entry = self.files.entry(open.table_id).or_default();
        let replaced = if replace {
            std::mem::take(entry)
        } else {
            Vec::new()
        };
        entry.extend(committed.iter().cloned());
        self.open_txns.remove(&txn);
        tracing::info!(table = %open.table, txn, files = committed.len(), replaced = replaced.len(), "write committed");
        Response::WriteCommitted {
            files: committed,
            replaced,
        }
    }

    fn abort_write(&mut self, txn: TxnId) -> Response {
        if self.open_txns.remove(&txn).is_none() {
            return Response::Rejected(Rejection::UnknownTxn(txn));
        }
        Response::WriteAborted
    }
}

fn invalid(msg: impl Into<String>) -> Response {
    Response::Rejected(Rejection::Invalid(msg.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(seq: u64, command: Command) -> Request {
        Request {
            client_id: "c1".into(),
            seq,
            command,
        }
    }

    fn table(name: &str, shards: u32) -> TableDef {
        TableDef {
            id: 0,
            name: name.into(),
            schema_ipc: vec![1, 2, 3],
            distribution: Some("k".into()),
            shard_count: shards,
            replication: 1,
            placement: (0..shards).map(|i| vec![u64::from(i) + 100]).collect(),
            created_index: 0,
        }
    }

    fn file(bucket: u32, path: &str) -> ShardFile {
        ShardFile {
            id: 0,
            table_id: 0,
            bucket,
            path: path.into(),
            rows: 10,
            bytes: 100,
            column_stats: vec![],
            owners: vec![100],
            txn: 0,
        }
    }

    /// A state driven through `apply` with an increasing index and seq.
    struct Driver {
        state: CatalogState,
        index: u64,
    }

    impl Driver {
        fn new() -> Self {
            Driver {
                state: CatalogState::default(),
                index: 0,
            }
        }
        fn run(&mut self, command: Command) -> Response {
            self.index += 1;
            self.state.apply(self.index, &req(self.index, command))
        }
        fn create(&mut self, name: &str, shards: u32) -> u64 {
            match self.run(Command::CreateTable {
                table: table(name, shards),
                if_not_exists: false,
            }) {
                Response::TableCreated { id, created: true } => id,
                other => panic!("create failed: {other:?}"),
            }
        }
        fn begin(&mut self, name: &str) -> TxnId {
            match self.run(Command::BeginWrite { table: name.into() }) {
                Response::WriteBegun { txn, .. } => txn,
                other => panic!("begin failed: {other:?}"),
            }
        }
    }

    #[test]
    fn create_table_assigns_id_and_index() {
        let mut d = Driver::new();
        let id = d.create("t", 2);
        let t = d.state.table("t").unwrap();
        assert_eq!(t.id, id);
        assert_eq!(t.created_index, 1);
        assert_eq!(t.placement.len(), 2);
        let id2 = d.create("u", 1);
        assert_ne!(id, id2);
    }

    #[test]
    fn create_table_exists_and_if_not_exists() {
        let mut d = Driver::new();
        let id = d.create("t", 1);
        assert_eq!(
            d.run(Command::CreateTable {
                table: table("t", 1),
                if_not_exists: false
            }),
            Response::Rejected(Rejection::TableExists("t".into()))
        );
        assert_eq!(
            d.run(Command::CreateTable {
                table: table("t", 3),
                if_not_exists: true
            }),
            Response::TableCreated { id, created: false }
        );
        assert_eq!(d.state.table("t").unwrap().shard_count, 1);
    }

    #[test]
    fn create_table_rejects_invalid() {
        let mut d = Driver::new();
        let r = d.run(Command::CreateTable {
            table: table("", 1),
            if_not_exists: false,
        });
        assert!(
            matches!(r, Response::Rejected(Rejection::Invalid(_))),
            "{r:?}"
        );
        let r = d.run(Command::CreateTable {
            table: table("z", 0),
            if_not_exists: false,
        });
        assert!(
            matches!(r, Response::Rejected(Rejection::Invalid(_))),
            "{r:?}"
        );
        let mut bad = table("p", 3);
        bad.placement.pop();
        let r = d.run(Command::CreateTable {
            table: bad,
            if_not_exists: false,
        });
        assert!(
            matches!(r, Response::Rejected(Rejection::Invalid(_))),
            "{r:?}"
        );
        assert!(d.state.tables.is_empty());
    }

    #[test]
    fn drop_table_returns_files_and_aborts_txns() {
        let mut d = Driver::new();
        let id = d.create("t", 1);
        let txn = d.begin("t");
        d.run(Command::CommitWrite {
            txn,
            files: vec![file(0, "a")],
            replace: false,
        });
        let open = d.begin("t");
        match d.run(Command::DropTable {
            name: "t".into(),
            if_exists: false,
        }) {
            Response::TableDropped {
                table: Some(t),
                files,
            } => {
                assert_eq!(t.id, id);
                assert_eq!(files.len(), 1);
                assert_eq!(files[0].path, "a");
            }
            other => panic!("{other:?}"),
        }
        assert!(d.state.table("t").is_none());
        assert!(d.state.table_files(id).is_empty());
        assert!(!d.state.open_txns.contains_key(&open));
        assert_eq!(
            d.run(Command::DropTable {
                name: "t".into(),
                if_exists: false
            }),
            Response::Rejected(Rejection::TableNotFound("t".into()))
        );
        assert_eq!(
            d.run(Command::DropTable {
                name: "t".into(),
                if_exists: true
            }),
            Response::TableDropped {
                table: None,
                files: vec![]
            }
        );
    }

    #[test]
    fn register_executor_keeps_id_per_data_id() {
        let mut d = Driver::new();
        let labels: BTreeMap<String, String> = [("zone".to_string(), "a".to_string())].into();
        let r1 = d.run(Command::RegisterExecutor {
            data_id: "d1".into(),
            address: "http://h:1".into(),
            labels: BTreeMap::new(),
        });
        let Response::ExecutorRegistered { id } = r1 else {
            panic!("{r1:?}")
        };
        let r2 = d.run(Command::RegisterExecutor {
            data_id: "d1".into(),
            address: "http://h:2".into(),
            labels: labels.clone(),
        });
        assert_eq!(r2, Response::ExecutorRegistered { id });
        let e = &d.state.executors()[&id];
        assert_eq!(e.address, "http://h:2");
        assert_eq!(e.labels, labels);
        let r3 = d.run(Command::RegisterExecutor {
            data_id: "d2".into(),
            address: "http://h:3".into(),
            labels: BTreeMap::new(),
        });
        let Response::ExecutorRegistered { id: id2 } = r3 else {
            panic!("{r3:?}")
        };
        assert_ne!(id, id2);
        assert_eq!(d.state.executors().len(), 2);
    }

    #[test]
    fn begin_write_unknown_table() {
        let mut d = Driver::new();
        assert_eq!(
            d.run(Command::BeginWrite {
                table: "nope".into()
            }),
            Response::Rejected(Rejection::TableNotFound("nope".into()))
        );
    }

    #[test]
    fn begin_write_returns_table() {
        let mut d = Driver::new();
        let id = d.create("t", 1);
        match d.run(Command::BeginWrite { table: "t".into() }) {
            Response::WriteBegun { txn, table } => {
                assert_eq!(table.id, id);
                let open = &d.state.open_txns[&txn];
                assert_eq!(open.table_id, id);
                assert_eq!(open.begun_index, 2);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn commit_write_assigns_ids_and_replaces() {
        let mut d = Driver::new();
        let id = d.create("t", 2);
        let txn = d.begin("t");
        let r = d.run(Command::CommitWrite {
            txn,
            files: vec![file(0, "a"), file(1, "b")],
            replace: false,
        });
        let Response::WriteCommitted { files, replaced } = r else {
            panic!("{r:?}")
        };
        assert!(replaced.is_empty());
        assert_eq!(files.len(), 2);
        assert!(
            files
                .iter()
                .all(|f| f.txn == txn && f.table_id == id && f.id != 0)
        );
        assert_ne!(files[0].id, files[1].id);
        assert_eq!(d.state.table_files(id), files.as_slice());
        assert!(d.state.open_txns.is_empty());

        let txn2 = d.begin("t");
        let r = d.run(Command::CommitWrite {
            txn: txn2,
            files: vec![file(0, "c")],
            replace: true,
        });
        let Response::WriteCommitted {
            files: new,
            replaced,
        } = r
        else {
            panic!("{r:?}")
        };
        assert_eq!(replaced, files);
        assert_eq!(d.state.table_files(id), new.as_slice());
    }

    #[test]
    fn commit_write_rejections() {
        let mut d = Driver::new();
        d.create("t", 1);
        assert_eq!(
            d.run(Command::CommitWrite {
                txn: 999,
                files: vec![],
                replace: false
            }),
            Response::Rejected(Rejection::UnknownTxn(999))
        );
        // A bucket outside the table is invalid and leaves the txn open.
        let txn = d.begin("t");
        let r = d.run(Command::CommitWrite {
            txn,
            files: vec![file(5, "x")],
            replace: false,
        });
        assert!(
            matches!(r, Response::Rejected(Rejection::Invalid(_))),
            "{r:?}"
        );
        assert!(d.state.open_txns.contains_key(&txn));
        // Dropped and re-created under the same name while the write ran.
        d.run(Command::DropTable {
            name: "t".into(),
            if_exists: false,
        });
        d.create("t", 1);
        d.state.open_txns.insert(
            txn,
            OpenTxn {
                id: txn,
                table_id: 1,
                table: "t".into(),
                begun_index: 1,
            },
        );
        assert_eq!(
            d.run(Command::CommitWrite {
                txn,
                files: vec![file(0, "y")],
                replace: false
            }),
            Response::Rejected(Rejection::TableChanged("t".into()))
        );
        assert!(!d.state.open_txns.contains_key(&txn));
        let new_id = d.state.table("t").unwrap().id;
        assert!(d.state.table_files(new_id).is_empty());
    }

    #[test]
    fn abort_write() {
        let mut d = Driver::new();
        d.create("t", 1);
        let txn = d.begin("t");
        assert_eq!(d.run(Command::AbortWrite { txn }), Response::WriteAborted);
        assert!(d.state.open_txns.is_empty());
        assert_eq!(
            d.run(Command::AbortWrite { txn }),
            Response::Rejected(Rejection::UnknownTxn(txn))
        );
        assert_eq!(
            d.run(Command::CommitWrite {
                txn,
                files: vec![],
                replace: false
            }),
            Response::Rejected(Rejection::UnknownTxn(txn))
        );
    }

    #[test]
    fn retried_request_applies_once() {
        let mut s = CatalogState::default();
        let create = req(
            1,
            Command::CreateTable {
                table: table("t", 1),
                if_not_exists: false,
            },
        );
        let first = s.apply(1, &create);
        assert!(matches!(
            first,
            Response::TableCreated { created: true, .. }
        ));
        // Same (client, seq) at a later index: same answer, no second table, no TableExists.
        let again = s.apply(2, &create);
        assert_eq!(first, again);
        assert_eq!(s.tables.len(), 1);
        let begin = req(2, Command::BeginWrite { table: "t".into() });
        let b1 = s.apply(3, &begin);
        let Response::WriteBegun { txn, .. } = b1.clone() else {
            panic!("{b1:?}")
        };
        let commit = req(
            3,
            Command::CommitWrite {
                txn,
                files: vec![file(0, "a")],
                replace: false,
            },
        );
        let c1 = s.apply(4, &commit);
        let c2 = s.apply(5, &commit);
        assert_eq!(c1, c2);
        assert_eq!(s.table_files(s.table("t").unwrap().id).len(), 1);
        // A rejection is remembered too.
        let dup = req(
            4,
            Command::CreateTable {
                table: table("t", 1),
                if_not_exists: false,
            },
        );
        let r1 = s.apply(6, &dup);
        assert_eq!(r1, Response::Rejected(Rejection::TableExists("t".into())));
        assert_eq!(s.apply(7, &dup), r1);
        // Another client is independent.
        let other = Request {
            client_id: "c2".into(),
            seq: 1,
            command: Command::BeginWrite { table: "t".into() },
        };
        assert!(matches!(s.apply(8, &other), Response::WriteBegun { .. }));
        assert_eq!(s.sessions.len(), 2);
    }

    #[test]
    fn ids_are_never_reused() {
        let mut d = Driver::new();
        let t1 = d.create("t", 1);
        d.run(Command::DropTable {
            name: "t".into(),
            if_exists: false,
        });
        let t2 = d.create("t", 1);
        assert_ne!(t1, t2);
        let txn = d.begin("t");
        assert!(txn > t2);
    }

    #[test]
    fn state_roundtrips_through_bincode() {
        let mut d = Driver::new();
        d.create("t", 2);
        let txn = d.begin("t");
        d.run(Command::CommitWrite {
            txn,
            files: vec![file(1, "a")],
            replace: false,
        });
        let bytes = bincode::serialize(&d.state).unwrap();
        let back: CatalogState = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, d.state);
    }
}
