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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::datatypes::{Field, Schema, TimeUnit};
    use shoal_catalog::ColumnStats;
    use shoal_flight::arrow_codec::encode_scalar;

    use super::*;

    fn stats(nulls: u64, bounds: Option<(ScalarValue, ScalarValue)>) -> ColumnStats {
        ColumnStats {
            null_count: nulls,
            min: bounds.as_ref().map(|(lo, _)| encode_scalar(lo).unwrap()),
            max: bounds.as_ref().map(|(_, hi)| encode_scalar(hi).unwrap()),
        }
    }

    fn file(rows: u64, column_stats: Vec<ColumnStats>) -> ShardFile {
        ShardFile {
            id: 0,
            table_id: 1,
            bucket: 0,
            path: "f.parquet".into(),
            rows,
            bytes: 100,
            column_stats,
            owners: vec![],
            txn: 0,
        }
    }

    #[test]
    fn bounds_merge_across_files_and_skip_all_null_files_and_timestamps() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, true),
            Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        ]));
        let ts = |v| ScalarValue::TimestampMicrosecond(Some(v), None);
        let a = file(
            10,
            vec![
                stats(
                    1,
                    Some((ScalarValue::Int64(Some(5)), ScalarValue::Int64(Some(9)))),
                ),
                stats(0, Some((ts(1), ts(2)))),
            ],
        );
        let b = file(
            4,
            vec![
                stats(
                    0,
                    Some((ScalarValue::Int64(Some(-3)), ScalarValue::Int64(Some(7)))),
                ),
                stats(0, Some((ts(0), ts(3)))),
            ],
        );
        let all_null = file(2, vec![stats(2, None), stats(2, None)]);
        let merged = column_statistics(&schema, &[&a, &b, &all_null]);
        assert_eq!(merged[0].null_count, Precision::Exact(3));
        assert_eq!(
            merged[0].min_value,
            Precision::Inexact(ScalarValue::Int64(Some(-3)))
        );
        assert_eq!(
            merged[0].max_value,
            Precision::Inexact(ScalarValue::Int64(Some(9)))
        );
        assert_eq!(merged[1].null_count, Precision::Exact(2));
        assert_eq!(merged[1].min_value, Precision::Absent);
        assert_eq!(merged[1].max_value, Precision::Absent);
    }

    #[test]
    fn a_file_without_bounds_leaves_the_column_unbounded() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, true)]));
        let bounded = file(
            3,
            vec![stats(
                0,
                Some((ScalarValue::Int64(Some(1)), ScalarValue::Int64(Some(2)))),
            )],
        );
        let unknown = file(3, vec![stats(0, None)]);
        let merged = column_statistics(&schema, &[&bounded, &unknown]);
        assert_eq!(merged[0].min_value, Precision::Absent);
        assert_eq!(merged[0].null_count, Precision::Exact(0));
    }
}
