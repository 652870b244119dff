//! Reads shard files from an executor's local disk.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt, stream};
use parquet::arrow::{ParquetRecordBatchStreamBuilder, ProjectionMask};

use crate::footer_cache::footer;
use crate::page_pruning::rows_to_read;
use crate::scan_predicate::{row_filter, row_groups_to_read};
use crate::wire_types::cast_batch;

/// Rows per batch read from Parquet.
pub const READ_BATCH_SIZE: usize = 8192;

/// Resolves a shard path relative to `data_dir`, refusing paths that escape it.
pub fn resolve(data_dir: &Path, relative: &str) -> Result<PathBuf> {
    let rel = Path::new(relative);
    if rel.is_absolute()
        || rel
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
    {
        return Err(DataFusionError::Execution(format!(
            "invalid shard path '{relative}'"
        )));
    }
    Ok(data_dir.join(rel))
}

/// Streams the rows of `paths` (in order), projected to `projection` of `table_schema`,
/// skipping the row groups and pages whose statistics rule out `predicate` and decoding only
/// the rows that match it (the plan filters again above the scan).
pub fn read_local(
    data_dir: &Path,
    paths: Vec<String>,
    table_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
) -> Result<SendableRecordBatchStream> {
    let output_schema = match &projection {
        Some(p) => Arc::new(table_schema.project(p)?),
        None => Arc::clone(&table_schema),
    };
    let files = paths
        .iter()
        .map(|p| resolve(data_dir, p))
        .collect::<Result<Vec<_>>>()?;
    let schema = Arc::clone(&output_schema);
    let batches = stream::iter(files)
        .then(move |file| {
            let projection = projection.clone();
            let schema = Arc::clone(&schema);
            let table_schema = Arc::clone(&table_schema);
            let predicate = predicate.clone();
            async move { open_file(file, projection, schema, table_schema, predicate).await }
        })
        .try_flatten();
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        output_schema,
        batches,
    )))
}

async fn open_file(
    file: PathBuf,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    table_schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
) -> Result<impl futures::Stream<Item = Result<RecordBatch>>> {
    let mut handle = tokio::fs::File::open(&file).await.map_err(|e| {
        DataFusionError::Execution(format!("cannot open shard file {}: {e}", file.display()))
    })?;
    let footer = footer(&file, &mut handle).await?;
    let mut builder = ParquetRecordBatchStreamBuilder::new_with_metadata(handle, footer);
    if let Some(predicate) = &predicate {
        let row_groups = row_groups_to_read(builder.metadata(), &table_schema, predicate);
        if let Some(rows) = rows_to_read(builder.metadata(), &table_schema, &row_groups, predicate)
        {
            builder = builder.with_row_selection(rows);
        }
        builder = builder.with_row_groups(row_groups);
        if let Some(filter) = row_filter(predicate, &table_schema, builder.parquet_schema()) {
            builder = builder.with_row_filter(filter);
        }
    }
    let mask = match &projection {
        Some(p) => ProjectionMask::roots(builder.parquet_schema(), p.iter().copied()),
        None => ProjectionMask::all(),
    };
    let reader = builder
        .with_projection(mask)
        .with_batch_size(READ_BATCH_SIZE)
        .build()?;
    Ok(reader
        .map_err(DataFusionError::from)
        .and_then(move |batch| {
            let schema = Arc::clone(&schema);
            async move {
                // A projection of zero columns (count(*)) still needs the row count.
                if schema.fields().is_empty() {
                    let options = arrow::array::RecordBatchOptions::new()
                        .with_row_count(Some(batch.num_rows()));
                    return Ok(RecordBatch::try_new_with_options(schema, vec![], &options)?);
                }
                cast_batch(&batch, &schema)
            }
        }))
}
