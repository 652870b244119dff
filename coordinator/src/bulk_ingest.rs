//! Bulk ingest (Flight SQL `CommandStatementIngest`, ADBC's `adbc_ingest`): a stream of Arrow
//! batches written into a table through the same write path as INSERT, after creating,
//! checking or replacing the table as the client asked.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::datasource::sink::DataSink;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;
use shoal_catalog::TableDef;
use shoal_flight::arrow_codec::decode_schema;
use shoal_flight::error::coded;
use shoal_flight::wire_types::{cast_batch, plain_schema};
use tonic::Code;
use tracing::info;

use crate::cluster::catalog_error;
use crate::query_engine::QueryEngine;
use crate::shard_write_sink::ShardWriteSink;
use crate::table_options::TableOptions;

/// What to do when the target table does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenMissing {
    Create,
    Fail,
}

/// What to do when the target table exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenExists {
    Fail,
    Append,
    /// Replace the rows; a table whose columns differ from the incoming ones is recreated.
    Replace,
}

#[derive(Debug, Clone)]
pub struct IngestRequest {
    pub table: String,
    pub when_missing: WhenMissing,
    pub when_exists: WhenExists,
    /// Distribution, shards and replication for a table this ingest creates.
    pub options: TableOptions,
}

impl QueryEngine {
    /// Writes `batches` (of `schema`) into the requested table; returns the rows written.
    pub async fn ingest(
        &self,
        request: &IngestRequest,
        schema: SchemaRef,
        batches: SendableRecordBatchStream,
    ) -> Result<u64> {
        let incoming = plain_schema(&schema);
        let state = self
            .cluster()
            .catalog
            .linearizable_state()
            .await
            .map_err(catalog_error)?;
        let (table, replace) = match (state.tables.get(&request.table), request.when_exists) {
            (None, _) if request.when_missing == WhenMissing::Fail => {
                return Err(coded(
                    Code::NotFound,
                    format!(
                        "table '{}' does not exist; ingest in mode create or create_append to make it",
                        request.table
                    ),
                ));
            }
            (None, _) => (self.create_for_ingest(request, &incoming).await?, false),
            (Some(_), WhenExists::Fail) => {
                return Err(coded(
                    Code::AlreadyExists,
                    format!(
                        "table '{}' already exists; ingest in mode append or replace to write to it",
                        request.table
                    ),
                ));
            }
            (Some(def), WhenExists::Append) => {
                check_columns(def, &incoming)?;
                (def.clone(), false)
            }
            (Some(def), WhenExists::Replace) => {
                if check_columns(def, &incoming).is_ok() {
                    // Same columns: the commit swaps every shard at once, so readers see the
                    // old rows or the new ones, never neither.
                    (def.clone(), true)
                } else {
                    self.drop_table_named(request.table.clone(), true).await?;
                    (self.create_for_ingest(request, &incoming).await?, false)
                }
            }
        };
        let table_schema = decode_schema(&table.schema_ipc)?;
        let target = Arc::clone(&table_schema);
        let rows = RecordBatchStreamAdapter::new(
            Arc::clone(&table_schema),
            batches.map(move |batch| batch.and_then(|b| cast_batch(&b, &target))),
        );
        let sink = ShardWriteSink::new(Arc::clone(self.cluster()), table, table_schema, replace);
        let task_ctx = self.session().await?.task_ctx();
        let written = sink.write_all(Box::pin(rows), &task_ctx).await?;
        info!(table = %request.table, rows = written, replace, "bulk ingest");
        Ok(written)
    }

    async fn create_for_ingest(
        &self,
        request: &IngestRequest,
        schema: &SchemaRef,
    ) -> Result<TableDef> {
        let mut table = self.table_def(&request.table, schema, &request.options)?;
        (table.id, _) = self.propose_table(table.clone(), false).await?;
        Ok(table)
    }
}

/// Appending needs the table's columns, by name and in order; types are cast.
fn check_columns(table: &TableDef, incoming: &SchemaRef) -> Result<()> {
    let existing = decode_schema(&table.schema_ipc)?;
    let names = |s: &SchemaRef| {
        s.fields()
            .iter()
            .map(|f| f.name().clone())
            .collect::<Vec<_>>()
    };
    let (want, got) = (names(&existing), names(incoming));
    if want != got {
        return Err(coded(
            Code::InvalidArgument,
            format!(
                "ingest columns ({}) do not match the columns of table '{}' ({})",
                got.join(", "),
                table.name,
                want.join(", ")
            ),
        ));
    }
    Ok(())
}
