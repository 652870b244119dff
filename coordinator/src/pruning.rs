//! Min/max pruning of shard files with the statistics the catalog holds.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{ArrayRef, BooleanArray, UInt64Array, new_null_array};
use arrow::datatypes::SchemaRef;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::{Column, Result, ScalarValue};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::PruningPredicateBuilder;
use shoal_catalog::{ColumnStats, ShardFile};
use shoal_flight::arrow_codec::decode_scalar;

/// The statistics of a list of files, one pruning container per file.
struct FileStatistics<'a> {
    schema: &'a SchemaRef,
    files: &'a [&'a ShardFile],
}

impl FileStatistics<'_> {
    fn values(
        &self,
        column: &Column,
        pick: impl Fn(&ColumnStats) -> Option<&Vec<u8>>,
    ) -> Option<ArrayRef> {
        let index = self.schema.index_of(&column.name).ok()?;
        let data_type = self.schema.field(index).data_type();
        let null = ScalarValue::try_from(data_type).ok()?;
        let values: Vec<ScalarValue> = self
            .files
            .iter()
            .map(|f| {
                f.column_stats
                    .get(index)
                    .and_then(&pick)
                    .and_then(|bytes| decode_scalar(bytes).ok())
                    .and_then(|v| v.cast_to(data_type).ok())
                    .unwrap_or_else(|| null.clone())
            })
            .collect();
        if values.is_empty() {
            return Some(new_null_array(data_type, 0));
        }
        ScalarValue::iter_to_array(values).ok()
    }
}

impl PruningStatistics for FileStatistics<'_> {
    fn min_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |s| s.min.as_ref())
    }

    fn max_values(&self, column: &Column) -> Option<ArrayRef> {
        self.values(column, |s| s.max.as_ref())
    }

    fn num_containers(&self) -> usize {
        self.files.len()
    }

    fn null_counts(&self, column: &Column) -> Option<ArrayRef> {
        let index = self.schema.index_of(&column.name).ok()?;
        let counts: UInt64Array = self
            .files
            .iter()
            .map(|f| f.column_stats.get(index).map(|s| s.null_count))
            .collect();
        Some(Arc::new(counts))
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        let counts: UInt64Array = self.files.iter().map(|f| Some(f.rows)).collect();
        Some(Arc::new(counts))
    }

    fn contained(&self, _column: &Column, _values: &HashSet<ScalarValue>) -> Option<BooleanArray> {
        None
    }
}

/// Keeps the files whose statistics say `predicate` may match some row.
pub fn prune_files<'a>(
    schema: &SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    files: Vec<&'a ShardFile>,
) -> Result<Vec<&'a ShardFile>> {
    let Some(predicate) = predicate else {
        return Ok(files);
    };
    // `None`: the predicate cannot prune (always true, or not expressible on min/max).
    let Some(pruning) = PruningPredicateBuilder::new()
        .with_file_schema(Arc::clone(schema))
        .build(predicate)
    else {
        return Ok(files);
    };
    let keep = pruning.prune(&FileStatistics {
        schema,
        files: &files,
    })?;
    Ok(files
        .into_iter()
        .zip(keep)
        .filter(|(_, k)| *k)
        .map(|(f, _)| f)
        .collect())
}
