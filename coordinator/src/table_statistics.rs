//! Column statistics of a table's files (from the catalog), merged for DataFusion's planner so
//! that join order and broadcast-versus-shuffle choices see real sizes and ranges.

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue};
use shoal_catalog::ShardFile;
use shoal_flight::arrow_codec::decode_scalar;

/// One entry per table column. Bounds are marked inexact: they plan queries but never answer
/// them (DataFusion would otherwise return `min(x)` from statistics alone). Timestamps and
/// times get none: DataFusion 55's interval analysis of `CAST(ts AS DATE) = d` over such bounds
/// computes a selectivity above 1 and fails the query with an internal error.
pub fn column_statistics(schema: &SchemaRef, files: &[&ShardFile]) -> Vec<ColumnStatistics> {
    schema
        .fields()
        .iter()
        .enumerate()
        .map(|(index, field)| {
            let mut nulls = Some(0u64);
            let mut min: Option<ScalarValue> = None;
            let mut max: Option<ScalarValue> = None;
            let mut bounded = !matches!(
                field.data_type(),
                DataType::Timestamp(_, _) | DataType::Time32(_) | DataType::Time64(_)
            );
            for file in files {
                let Some(stats) = file.column_stats.get(index) else {
                    nulls = None;
                    bounded = false;
                    continue;
                };
                nulls = nulls.map(|n| n + stats.null_count);
                if stats.null_count == file.rows {
                    continue; // all NULL: no bounds to merge
                }
                let decode = |bytes: &Option<Vec<u8>>| {
                    bytes
                        .as_ref()
                        .and_then(|b| decode_scalar(b).ok())
                        .and_then(|v| v.cast_to(field.data_type()).ok())
                };
                match (decode(&stats.min), decode(&stats.max)) {
                    (Some(lo), Some(hi)) => {
                        min = Some(match min {
                            Some(m) if m.partial_cmp(&lo).is_some_and(|o| o.is_le()) => m,
                            _ => lo,
                        });
                        max = Some(match max {
                            Some(m) if m.partial_cmp(&hi).is_some_and(|o| o.is_ge()) => m,
                            _ => hi,
                        });
                    }
                    _ => bounded = false,
                }
            }
            let bound = |v: Option<ScalarValue>| match v {
                Some(v) if bounded => Precision::Inexact(v),
                _ => Precision::Absent,
            };
            ColumnStatistics {
                null_count: nulls.map_or(Precision::Absent, |n| Precision::Exact(n as usize)),
                min_value: bound(min),
                max_value: bound(max),
                ..ColumnStatistics::new_unknown()
            }
        })
        .collect()
}
