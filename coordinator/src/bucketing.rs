//! Which bucket a row belongs to: one hash function for writes and for pruning.
//!
//! Rows go to buckets with DataFusion's own hash repartitioning, so a bucket of a table holds
//! exactly the rows a `RepartitionExec` on the distribution column would send to that
//! partition, and an equality filter on the distribution column names its bucket.

use std::collections::BTreeSet;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_plan::metrics::Time;
use datafusion::physical_plan::repartition::BatchPartitioner;

/// A partitioner that splits batches of `schema` into `shard_count` buckets by `column`.
pub fn bucket_partitioner(
    schema: &SchemaRef,
    column: &str,
    shard_count: u32,
) -> Result<BatchPartitioner> {
    let index = schema.index_of(column)?;
    BatchPartitioner::new_hash_partitioner(
        vec![Arc::new(Column::new(column, index))],
        shard_count as usize,
        Time::new(),
    )
}

/// The buckets that can hold rows matching all `filters`, when some filter pins the
/// distribution column to literal values (`col = v`, `col IN (v, ...)`); `None` otherwise.
pub fn buckets_matching(
    schema: &SchemaRef,
    column: &str,
    shard_count: u32,
    filters: &[Expr],
) -> Result<Option<BTreeSet<u32>>> {
    let Ok(field) = schema.field_with_name(column) else {
        return Ok(None);
    };
    let mut result: Option<BTreeSet<u32>> = None;
    for filter in filters {
        let Some(values) = pinned_values(filter, column) else {
            continue;
        };
        let Some(buckets) = buckets_of(field, &values, shard_count)? else {
            continue;
        };
        result = Some(match result {
            Some(previous) => previous.intersection(&buckets).copied().collect(),
            None => buckets,
        });
    }
    Ok(result)
}

/// Literal values a filter pins `column` to.
fn pinned_values(filter: &Expr, column: &str) -> Option<Vec<ScalarValue>> {
    let is_column = |e: &Expr| matches!(e, Expr::Column(c) if c.name == column);
    let literal = |e: &Expr| match e {
        Expr::Literal(v, _) => Some(v.clone()),
        _ => None,
    };
    match filter {
        Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) => {
            if is_column(left) {
                literal(right).map(|v| vec![v])
            } else if is_column(right) {
                literal(left).map(|v| vec![v])
            } else {
                None
            }
        }
        Expr::InList(InList {
            expr,
            list,
            negated: false,
        }) if is_column(expr) => list.iter().map(literal).collect(),
        _ => None,
    }
}

/// The buckets of `values` of the column `field`; `None` if a value does not fit the type.
fn buckets_of(
    field: &Field,
    values: &[ScalarValue],
    shard_count: u32,
) -> Result<Option<BTreeSet<u32>>> {
    let mut typed = Vec::with_capacity(values.len());
    for v in values {
        if v.is_null() {
            continue; // `col = NULL` matches nothing
        }
        match v.cast_to(field.data_type()) {
            Ok(t) => typed.push(t),
            Err(_) => return Ok(None),
        }
    }
    if typed.is_empty() {
        return Ok(Some(BTreeSet::new()));
    }
    let schema = Arc::new(Schema::new(vec![field.clone().with_nullable(true)]));
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![ScalarValue::iter_to_array(typed)?],
    )?;
    let mut partitioner = bucket_partitioner(&schema, field.name(), shard_count)?;
    let mut buckets = BTreeSet::new();
    for part in partitioner.partition_iter(batch)? {
        let (bucket, rows) = part?;
        if rows.num_rows() > 0 {
            buckets.insert(bucket as u32);
        }
    }
    Ok(Some(buckets))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::DataType;
    use datafusion::logical_expr::{col, lit};

    #[test]
    fn an_equality_filter_names_the_bucket_the_writer_used() {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let keys: Vec<i64> = (0..1000).collect();
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from(keys))])
                .unwrap();
        let mut writer = bucket_partitioner(&schema, "k", 4).unwrap();
        let mut bucket_of_42 = None;
        for part in writer.partition_iter(batch).unwrap() {
            let (bucket, rows) = part.unwrap();
            let column = rows
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            if column.values().contains(&42) {
                bucket_of_42 = Some(bucket as u32);
            }
        }
        let pruned = buckets_matching(&schema, "k", 4, &[col("k").eq(lit(42i64))])
            .unwrap()
            .unwrap();
        assert_eq!(
            pruned.into_iter().collect::<Vec<_>>(),
            vec![bucket_of_42.unwrap()]
        );
        let none = buckets_matching(&schema, "k", 4, &[col("k").gt(lit(42i64))]).unwrap();
        assert!(none.is_none(), "range filters do not pin a bucket");
        let two = buckets_matching(
            &schema,
            "k",
            4,
            &[col("k").in_list(vec![lit(1i64), lit(2i64)], false)],
        )
        .unwrap()
        .unwrap();
        assert!(!two.is_empty() && two.len() <= 2);
    }
}
