//! Skips the row groups of a shard file whose statistics prove a scan's predicate false, reads
//! only the rows that match it, and carries that predicate between nodes (DataFusion's
//! protobuf form of a physical expression).

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch};
use arrow::compute::prep_null_mask_filter;
use arrow::datatypes::{Schema, SchemaRef};
use arrow::error::ArrowError;
use datafusion::common::{Column, ScalarValue};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns};
use datafusion::physical_optimizer::pruning::{PruningPredicateBuilder, PruningStatistics};
use datafusion_proto::physical_plan::DefaultPhysicalExtensionCodec;
use datafusion_proto::physical_plan::from_proto::parse_physical_expr;
use datafusion_proto::physical_plan::to_proto::serialize_physical_expr;
use datafusion_proto::protobuf::PhysicalExprNode;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{ArrowPredicateFn, RowFilter};
use parquet::file::metadata::ParquetMetaData;
use parquet::schema::types::SchemaDescriptor;
use prost::Message;
use tracing::debug;

/// A predicate over a table's columns -> bytes; `None` if it cannot be encoded (the scan then
/// reads every row group, which is slower but equally correct).
pub fn encode_predicate(predicate: &Arc<dyn PhysicalExpr>) -> Option<Vec<u8>> {
    match serialize_physical_expr(predicate, &DefaultPhysicalExtensionCodec {}) {
        Ok(node) => Some(node.encode_to_vec()),
        Err(e) => {
            debug!(error = %e, "scan predicate not sent; row groups will not be pruned");
            None
        }
    }
}

/// Bytes from [`encode_predicate`] -> the predicate over `table_schema`; `None` if unreadable.
pub fn decode_predicate(
    bytes: &[u8],
    table_schema: &Schema,
    ctx: &TaskContext,
) -> Option<Arc<dyn PhysicalExpr>> {
    let node = PhysicalExprNode::decode(bytes).ok()?;
    parse_physical_expr(&node, ctx, table_schema, &DefaultPhysicalExtensionCodec {})
        .inspect_err(|e| debug!(error = %e, "scan predicate unreadable; reading every row group"))
        .ok()
}

/// The indexes of the row groups of a file that may hold rows matching `predicate`.
pub fn row_groups_to_read(
    metadata: &ParquetMetaData,
    table_schema: &SchemaRef,
    predicate: &Arc<dyn PhysicalExpr>,
) -> Vec<usize> {
    let all: Vec<usize> = (0..metadata.num_row_groups()).collect();
    let Some(pruning) = PruningPredicateBuilder::new()
        .with_file_schema(Arc::clone(table_schema))
        .build(Arc::clone(predicate))
    else {
        return all;
    };
    let statistics = RowGroupStatistics {
        metadata,
        schema: table_schema,
    };
    match pruning.prune(&statistics) {
        Ok(keep) => all.into_iter().filter(|i| keep[*i]).collect(),
        Err(_) => all,
    }
}

/// One pruning container per row group, from the Parquet footer's column chunk statistics.
struct RowGroupStatistics<'a> {
    metadata: &'a ParquetMetaData,
    schema: &'a SchemaRef,
}

impl RowGroupStatistics<'_> {
    /// No bounds for floats: Parquet leaves NaN out of min/max, but DataFusion's comparisons
    /// order NaN above every number (so `f = 'NaN'` matches rows the bounds would rule out).
    fn converter(&self, column: &Column) -> Option<StatisticsConverter<'_>> {
        let field = self.schema.field_with_name(&column.name).ok()?;
        if field.data_type().is_floating() {
            return None;
        }
        StatisticsConverter::try_new(
            &column.name,
            self.schema,
            self.metadata.file_metadata().schema_descr(),
        )
        .ok()
    }
}

impl PruningStatistics for RowGroupStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.converter(column)?
            .row_group_mins(self.metadata.row_groups().iter())
            .ok()
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.converter(column)?
            .row_group_maxes(self.metadata.row_groups().iter())
            .ok()
    }

    fn num_containers(&self) -> usize {
        self.metadata.num_row_groups()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let counts = self
            .converter(column)?
            .row_group_null_counts(self.metadata.row_groups().iter())
            .ok()?;
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: Vec<u64> = self
            .metadata
            .row_groups()
            .iter()
            .map(|rg| rg.num_rows() as u64)
            .collect();
        Some(Arc::new(arrow::array::UInt64Array::from(counts)))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// A Parquet row filter that evaluates `predicate` on just the columns it reads, so the reader
/// decodes the other columns only for matching rows and an owner sends only those rows. The
/// plan filters again above the scan; this only saves work. `None` if the predicate reads no
/// column or does not fit the file.
pub fn row_filter(
    predicate: &Arc<dyn PhysicalExpr>,
    table_schema: &SchemaRef,
    parquet_schema: &SchemaDescriptor,
) -> Option<RowFilter> {
    let mut indices: Vec<usize> = collect_columns(predicate)
        .iter()
        .map(|c| c.index())
        .collect();
    indices.sort_unstable();
    indices.dedup();
    if indices.is_empty() || indices.iter().any(|i| *i >= table_schema.fields().len()) {
        return None;
    }
    // The reader hands the predicate its columns in file order.
    let columns = table_schema.project(&indices).ok()?;
    let expr = reassign_expr_columns(Arc::clone(predicate), &columns).ok()?;
    let mask = ProjectionMask::roots(parquet_schema, indices.iter().copied());
    let evaluate = ArrowPredicateFn::new(mask, move |batch: RecordBatch| {
        let error = |e: datafusion::error::DataFusionError| ArrowError::ComputeError(e.to_string());
        let value = expr.evaluate(&batch).map_err(error)?;
        let array = value.into_array(batch.num_rows()).map_err(error)?;
        let matches = array
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| ArrowError::ComputeError("scan predicate is not boolean".into()))?;
        // NULL is not a match (`prep_null_mask_filter` wants a null buffer).
        Ok(if matches.null_count() > 0 {
            prep_null_mask_filter(matches)
        } else {
            matches.clone()
        })
    });
    Some(RowFilter::new(vec![Box::new(evaluate)]))
}
