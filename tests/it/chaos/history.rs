//! The chaos load: clients issuing DDL, INSERTs and queries against random coordinators, every
//! operation recorded with its invoke and complete times and its outcome (timeouts and
//! "unavailable" are recorded as unknown: the operation may or may not have happened).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arrow::array::{Array, Int64Array, StringArray};
use arrow::record_batch::RecordBatch;
use tonic::{Code, Status};

use crate::common::Client;

/// Longest any one operation may take before it is recorded as unknown.
const OP_TIMEOUT: Duration = Duration::from_secs(8);
/// Pause between one client's operations, so shard files stay few enough to read quickly.
const THINK_TIME: Duration = Duration::from_millis(150);

/// What a client did.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `CREATE TABLE name` (DDL; names are unique).
    CreateTable { name: String },
    /// `INSERT INTO table VALUES (value)` (values are unique).
    Insert { table: String, value: i64 },
    /// `SELECT v FROM table`.
    ReadRows { table: String },
    /// `SHOW TABLES`.
    ReadTables,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Ok,
    Rows(BTreeSet<i64>),
    Tables(BTreeSet<String>),
    /// Refused for certain (the operation did not happen).
    Failed(String),
    /// Timed out or unavailable: it may or may not have happened.
    Unknown(String),
}

/// One recorded operation; times are since the start of the history.
#[derive(Clone, Debug)]
pub struct Event {
    pub client: usize,
    pub coordinator: u64,
    pub op: Op,
    pub invoke: Duration,
    pub complete: Duration,
    pub outcome: Outcome,
}

impl Event {
    pub fn acknowledged(&self) -> bool {
        self.outcome == Outcome::Ok
    }

    pub fn is_write(&self) -> bool {
        matches!(self.op, Op::CreateTable { .. } | Op::Insert { .. })
    }
}

#[derive(Clone)]
pub struct History {
    start: Instant,
    events: Arc<Mutex<Vec<Event>>>,
}

impl History {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            events: Arc::default(),
        }
    }

    /// Time since the start of the history.
    pub fn now(&self) -> Duration {
        self.start.elapsed()
    }

    pub fn events(&self) -> Vec<Event> {
        self.events.lock().unwrap().clone()
    }

    /// Runs `op` on coordinator `coordinator` through `client` and records it.
    pub async fn run(&self, client: usize, coordinator: u64, conn: &SqlConn, op: Op) -> Event {
        let invoke = self.now();
        let outcome = match tokio::time::timeout(OP_TIMEOUT, conn.execute(&op)).await {
            Ok(outcome) => outcome,
            Err(_) => Outcome::Unknown(format!("no answer within {OP_TIMEOUT:?}")),
        };
        let event = Event {
            client,
            coordinator,
            op,
            invoke,
            complete: self.now(),
            outcome,
        };
        self.events.lock().unwrap().push(event.clone());
        event
    }
}

/// A lazily connected Flight SQL connection to one coordinator.
#[derive(Clone)]
pub struct SqlConn {
    inner: Client,
}

impl SqlConn {
    pub fn new(url: &str) -> Self {
        Self {
            inner: Client::lazy(url),
        }
    }

    /// GetFlightInfo + DoGet of every endpoint.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        self.inner.query(sql).await
    }

    async fn execute(&self, op: &Op) -> Outcome {
        let sql = match op {
            Op::CreateTable { name } => format!("CREATE TABLE {name} (v BIGINT)"),
            Op::Insert { table, value } => format!("INSERT INTO {table} VALUES ({value})"),
            Op::ReadRows { table } => format!("SELECT v FROM {table}"),
            Op::ReadTables => "SHOW TABLES".to_string(),
        };
        match self.query(&sql).await {
            Err(status) => classify(&status),
            Ok(batches) => match op {
                Op::ReadRows { .. } => Outcome::Rows(int_values(&batches)),
                Op::ReadTables => Outcome::Tables(table_names(&batches)),
                _ => Outcome::Ok,
            },
        }
    }
}

/// Refusals that say the statement itself is wrong are definite; everything else (the
/// coordinator unavailable, a broken connection, a deadline) leaves the outcome unknown.
fn classify(status: &Status) -> Outcome {
    let text = format!("{:?}: {}", status.code(), status.message());
    match status.code() {
        Code::InvalidArgument | Code::NotFound | Code::AlreadyExists => Outcome::Failed(text),
        _ => Outcome::Unknown(text),
    }
}

fn int_values(batches: &[RecordBatch]) -> BTreeSet<i64> {
    let mut values = BTreeSet::new();
    for batch in batches {
        let column = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("v is BIGINT");
        values.extend(column.iter().flatten());
    }
    values
}

fn table_names(batches: &[RecordBatch]) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for batch in batches {
        let schema = batch.schema();
        let Ok(name_index) = schema.index_of("table_name") else {
            continue;
        };
        let schema_index = schema.index_of("table_schema").ok();
        let cast = |i: usize| {
            arrow::compute::cast(batch.column(i), &arrow::datatypes::DataType::Utf8)
                .expect("castable")
        };
        let names_column = cast(name_index);
        let names_column = names_column.as_any().downcast_ref::<StringArray>().unwrap();
        let schemas = schema_index.map(cast);
        for row in 0..batch.num_rows() {
            let metadata = schemas.as_ref().is_some_and(|s| {
                let s = s.as_any().downcast_ref::<StringArray>().unwrap();
                s.is_valid(row) && s.value(row) == "information_schema"
            });
            if !metadata && names_column.is_valid(row) {
                names.insert(names_column.value(row).to_string());
            }
        }
    }
    names
}

/// `clients` clients, each on its own rows table `rows_<client>`, picking a random
/// coordinator of `coordinators` for every operation, until `stop` is set.
pub fn start_load(
    history: &History,
    clients: usize,
    coordinators: Vec<u64>,
    url: fn(u64) -> String,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..clients)
        .map(|client| {
            let history = history.clone();
            let coordinators = coordinators.clone();
            let stop = Arc::clone(&stop);
            tokio::spawn(async move {
                let conns: Vec<(u64, SqlConn)> = coordinators
                    .iter()
                    .map(|id| (*id, SqlConn::new(&url(*id))))
                    .collect();
                let mut seq: i64 = 0;
                let mut rng = client as u64 * 7919 + 17;
                while !stop.load(Ordering::Relaxed) {
                    rng = rng
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let (coordinator, conn) = &conns[(rng >> 33) as usize % conns.len()];
                    seq += 1;
                    let table = rows_table(client);
                    let op = match (rng >> 20) % 20 {
                        0..=9 => Op::Insert {
                            table,
                            value: client as i64 * 1_000_000 + seq,
                        },
                        10..=12 => Op::CreateTable {
                            name: format!("ddl_{client}_{seq}"),
                        },
                        13..=17 => Op::ReadRows { table },
                        _ => Op::ReadTables,
                    };
                    history.run(client, *coordinator, conn, op).await;
                    tokio::time::sleep(THINK_TIME).await;
                }
            })
        })
        .collect()
}

pub fn rows_table(client: usize) -> String {
    format!("rows_{client}")
}
