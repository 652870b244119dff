//! Narrows a shard scan from row groups to pages: the page index (per-page min/max and row
//! offsets that the writer stores by default) rules out pages, so a point lookup decodes one
//! page of each column instead of a whole row group.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::datasource::physical_plan::parquet::{
    ParquetAccessPlan, ParquetFileMetrics, PagePruningAccessPlanFilter,
};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{collect_columns, conjunction, split_conjunction};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use parquet::arrow::arrow_reader::RowSelection;
use parquet::file::metadata::ParquetMetaData;
use tracing::debug;

/// The rows of `row_groups` that pages matching `predicate` hold; `None` to read them whole
/// (no page index, or no page ruled out).
pub fn rows_to_read(
    metadata: &ParquetMetaData,
    table_schema: &SchemaRef,
    row_groups: &[usize],
    predicate: &Arc<dyn PhysicalExpr>,
) -> Option<RowSelection> {
    if metadata.column_index().is_none() || metadata.offset_index().is_none() {
        return None;
    }
    let predicate = without_float_columns(predicate, table_schema)?;
    let mut plan = ParquetAccessPlan::new_none(metadata.num_row_groups());
    for index in row_groups {
        plan.scan(*index);
    }
    let filter = PagePruningAccessPlanFilter::new(&predicate, Arc::clone(table_schema));
    let metrics = ParquetFileMetrics::new(0, "shard", &ExecutionPlanMetricsSet::new());
    let plan = filter.prune_plan_with_page_index(
        plan,
        table_schema,
        metadata.file_metadata().schema_descr(),
        metadata,
        &metrics,
    );
    plan.into_overall_row_selection(metadata.row_groups())
        .inspect_err(|e| debug!(error = %e, "page selection unusable; reading whole row groups"))
        .ok()
        .flatten()
}

/// The conjuncts of `predicate` that read no float column: Parquet leaves NaN out of page
/// bounds while DataFusion orders NaN above every number, so float bounds could drop matches.
fn without_float_columns(
    predicate: &Arc<dyn PhysicalExpr>,
    table_schema: &SchemaRef,
) -> Option<Arc<dyn PhysicalExpr>> {
    let usable: Vec<Arc<dyn PhysicalExpr>> = split_conjunction(predicate)
        .into_iter()
        .filter(|conjunct| {
            collect_columns(conjunct).iter().all(|column| {
                table_schema
                    .fields()
                    .get(column.index())
                    .is_some_and(|field| !field.data_type().is_floating())
            })
        })
        .cloned()
        .collect();
    (!usable.is_empty()).then(|| conjunction(usable))
}
