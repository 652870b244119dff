//! Narrows a shard scan from row groups to pages: the page index (per-page min/max and row
//! offsets that the writer stores by default) rules out pages, so a point lookup decodes one
//! page of each column instead of a whole row group.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::datasource::physical_plan::parquet::{
    PagePruningAccessPlanFilter, ParquetAccessPlan, ParquetFileMetrics,
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Float64Array, Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use bytes::Bytes;
    use datafusion::logical_expr::Operator;
    use datafusion::physical_expr::expressions::{binary, col, lit};
    use parquet::arrow::ArrowWriter;
    use parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};
    use parquet::file::properties::WriterProperties;

    const ROWS: i64 = 100_000;
    const PAGE_ROWS: usize = 1000;

    /// One row group of `k` = 0..ROWS and `f` = the same as floats, in pages of PAGE_ROWS.
    fn file() -> (SchemaRef, ParquetMetaData) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("f", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..ROWS)),
                Arc::new(Float64Array::from_iter_values((0..ROWS).map(|v| v as f64))),
            ],
        )
        .unwrap();
        let props = WriterProperties::builder()
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_write_batch_size(PAGE_ROWS)
            .build();
        let mut buffer = Vec::new();
        let mut writer =
            ArrowWriter::try_new(&mut buffer, Arc::clone(&schema), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let metadata = ParquetMetaDataReader::new()
            .with_page_index_policy(PageIndexPolicy::Required)
            .parse_and_finish(&Bytes::from(buffer))
            .unwrap();
        (schema, metadata)
    }

    fn equals(
        schema: &SchemaRef,
        column: &str,
        value: Arc<dyn PhysicalExpr>,
    ) -> Arc<dyn PhysicalExpr> {
        binary(col(column, schema).unwrap(), Operator::Eq, value, schema).unwrap()
    }

    #[test]
    fn an_equality_on_a_sorted_column_reads_one_page() {
        let (schema, metadata) = file();
        let predicate = equals(&schema, "k", lit(54_321i64));
        let rows = rows_to_read(&metadata, &schema, &[0], &predicate).expect("pages pruned");
        assert_eq!(rows.row_count(), PAGE_ROWS);
    }

    #[test]
    fn a_range_reads_the_pages_it_overlaps() {
        let (schema, metadata) = file();
        let from = binary(
            col("k", &schema).unwrap(),
            Operator::GtEq,
            lit(2_500i64),
            &schema,
        );
        let to = binary(
            col("k", &schema).unwrap(),
            Operator::Lt,
            lit(4_500i64),
            &schema,
        );
        let predicate = conjunction([from.unwrap(), to.unwrap()]);
        let rows = rows_to_read(&metadata, &schema, &[0], &predicate).expect("pages pruned");
        assert_eq!(rows.row_count(), 3 * PAGE_ROWS);
    }

    #[test]
    fn float_bounds_are_not_trusted() {
        let (schema, metadata) = file();
        let predicate = equals(&schema, "f", lit(54_321f64));
        assert!(rows_to_read(&metadata, &schema, &[0], &predicate).is_none());
    }

    #[test]
    fn a_row_group_not_asked_for_is_not_read() {
        let (schema, metadata) = file();
        let predicate = equals(&schema, "k", lit(54_321i64));
        let rows = rows_to_read(&metadata, &schema, &[], &predicate);
        assert!(rows.is_none_or(|rows| rows.row_count() == 0));
    }
}
