//! The sqllogictest connection: statements go to a Shoal cluster over Flight SQL, and every
//! query also runs on single-node DataFusion over the same rows (differential mode).

use std::fmt;
use std::sync::{Arc, Mutex};

use arrow::array::{Array, RecordBatch, StringArray};
use async_trait::async_trait;
use datafusion::common::TableReference;
use datafusion::datasource::MemTable;
use datafusion::prelude::{SessionConfig, SessionContext};
use sqllogictest::{AsyncDB, DBOutput};
use tonic::{Code, Status};

use crate::common::Client;
use crate::slt_format::{SltType, format_rows, slt_type};

/// An error as a `.slt` file matches it: the gRPC code name, then the server's message.
#[derive(Debug)]
pub struct SltError(pub String);

impl fmt::Display for SltError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SltError {}

impl From<Status> for SltError {
    fn from(status: Status) -> Self {
        Self(format!(
            "{}: {}",
            code_name(status.code()),
            status.message()
        ))
    }
}

fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Queries whose answers single-node DataFusion disagreed with, for the suite to report.
pub type Mismatches = Arc<Mutex<Vec<String>>>;

pub struct ShoalDb {
    client: Client,
    /// Single-node DataFusion holding a copy of every Shoal table.
    reference: SessionContext,
    /// Whether a statement may have changed tables since the reference copy was taken.
    reference_stale: bool,
    mismatches: Mismatches,
    /// Names the file and layout in mismatch reports.
    label: String,
}

impl ShoalDb {
    pub async fn connect(url: &str, label: String, mismatches: Mismatches) -> Self {
        let mut config = SessionConfig::new().with_information_schema(true);
        config.options_mut().sql_parser.map_string_types_to_utf8view = false;
        Self {
            client: Client::connect(url).await,
            reference: SessionContext::new_with_config(config),
            reference_stale: true,
            mismatches,
            label,
        }
    }

    /// Copies every Shoal table into the reference engine as an in-memory table.
    async fn refresh_reference(&mut self) -> Result<(), SltError> {
        let listing = self
            .client
            .query("SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'")
            .await?;
        let previous = self
            .reference
            .catalog("datafusion")
            .and_then(|c| c.schema("public"))
            .map(|s| s.table_names())
            .unwrap_or_default();
        for table in previous {
            self.reference
                .deregister_table(TableReference::bare(table))
                .map_err(|e| SltError(e.to_string()))?;
        }
        for batch in &listing {
            let names = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| SltError("table_name is not text".into()))?;
            for name in names.iter().flatten() {
                let (schema, batches) = self
                    .client
                    .query_with_schema(&format!("SELECT * FROM \"{name}\""))
                    .await?;
                let table = MemTable::try_new(schema, vec![batches])
                    .map_err(|e| SltError(format!("copying {name}: {e}")))?;
                self.reference
                    .register_table(TableReference::bare(name), Arc::new(table))
                    .map_err(|e| SltError(e.to_string()))?;
            }
        }
        self.reference_stale = false;
        Ok(())
    }

    async fn run_reference(&self, sql: &str) -> Result<Vec<RecordBatch>, String> {
        let df = self.reference.sql(sql).await.map_err(|e| e.to_string())?;
        df.collect().await.map_err(|e| e.to_string())
    }

    fn record_mismatch(&self, sql: &str, detail: String) -> SltError {
        let text = format!("[{}] {sql}\n  {detail}", self.label);
        self.mismatches.lock().expect("lock").push(text.clone());
        SltError(format!("differential mismatch: {detail}"))
    }
}

#[derive(PartialEq)]
enum Kind {
    /// Compared with single-node DataFusion.
    Query,
    /// Shows something Shoal-specific (plans, catalog listings): not compared.
    Inspection,
    /// May change tables.
    Statement,
}

fn kind(sql: &str) -> Kind {
    let first = sql
        .trim_start()
        .trim_start_matches('(')
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    match first.as_str() {
        "select" | "with" | "values" => Kind::Query,
        "explain" | "show" | "describe" => Kind::Inspection,
        _ => Kind::Statement,
    }
}

#[async_trait]
impl AsyncDB for ShoalDb {
    type Error = SltError;
    type ColumnType = SltType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<SltType>, SltError> {
        let kind = kind(sql);
        if kind == Kind::Query && self.reference_stale {
            self.refresh_reference().await?;
        }
        let shoal = self.client.query_with_schema(sql).await;
        if kind == Kind::Statement {
            self.reference_stale = true;
            let (_, batches) = shoal?;
            return Ok(DBOutput::StatementComplete(affected_rows(&batches)));
        }
        let reference = if kind == Kind::Query {
            Some(self.run_reference(sql).await)
        } else {
            None
        };
        let (schema, batches) = match (shoal, reference) {
            (Err(status), Some(Ok(_))) => {
                let error = SltError::from(status);
                return Err(self.record_mismatch(
                    sql,
                    format!("Shoal failed ({error}) but DataFusion answered"),
                ));
            }
            (Err(status), _) => return Err(status.into()),
            (Ok(_), Some(Err(e))) => {
                return Err(
                    self.record_mismatch(sql, format!("Shoal answered but DataFusion failed: {e}"))
                );
            }
            (Ok((schema, batches)), Some(Ok(expected))) => {
                let mut ours = format_rows(&batches);
                let mut theirs = format_rows(&expected);
                ours.sort();
                theirs.sort();
                if ours != theirs {
                    return Err(self.record_mismatch(
                        sql,
                        format!("Shoal rows {ours:?} differ from DataFusion rows {theirs:?}"),
                    ));
                }
                (schema, batches)
            }
            (Ok(result), None) => result,
        };
        Ok(DBOutput::Rows {
            types: schema
                .fields()
                .iter()
                .map(|f| slt_type(f.data_type()))
                .collect(),
            rows: format_rows(&batches),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "shoal"
    }

    async fn sleep(duration: std::time::Duration) {
        tokio::time::sleep(duration).await;
    }
}

/// The row count a DML statement reports (its one `count` value), or 0 for DDL.
fn affected_rows(batches: &[RecordBatch]) -> u64 {
    batches
        .first()
        .filter(|b| b.schema().field(0).name() == "count" && b.num_rows() == 1)
        .and_then(|b| {
            arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::UInt64)
                .ok()
                .map(|c| {
                    c.as_any()
                        .downcast_ref::<arrow::array::UInt64Array>()
                        .map_or(0, |a| if a.is_null(0) { 0 } else { a.value(0) })
                })
        })
        .unwrap_or(0)
}
