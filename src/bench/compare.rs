//! Whether two engines returned the same rows: order-insensitive, floats to 6 significant digits
//! (summation order differs between engines), decimals and everything else exactly.

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};

/// Every row as strings, sorted.
pub fn canonical_rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<String>> = batch
            .columns()
            .iter()
            .map(|column| {
                (0..column.len())
                    .map(|i| {
                        if column.is_null(i) {
                            return "NULL".to_string();
                        }
                        match column.data_type() {
                            DataType::Float64 => {
                                rounded(column.as_primitive::<Float64Type>().value(i))
                            }
                            DataType::Float32 => {
                                rounded(column.as_primitive::<Float32Type>().value(i) as f64)
                            }
                            _ => ArrayFormatter::try_new(column.as_ref(), &options)
                                .map(|f| f.value(i).to_string())
                                .unwrap_or_else(|e| format!("<{e}>")),
                        }
                    })
                    .collect()
            })
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[row].clone()).collect());
        }
    }
    rows.sort();
    rows
}

fn rounded(value: f64) -> String {
    format!("{value:.5e}")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Float64Array, Int64Array};
    use arrow::datatypes::{Field, Schema};

    use super::*;

    #[test]
    fn order_and_float_noise_do_not_matter() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("x", DataType::Float64, true),
        ]));
        let batch = |k: Vec<i64>, x: Vec<Option<f64>>| {
            RecordBatch::try_new(
                Arc::clone(&schema),
                vec![
                    Arc::new(Int64Array::from(k)),
                    Arc::new(Float64Array::from(x)),
                ],
            )
            .unwrap()
        };
        let a = batch(vec![1, 2], vec![Some(0.1 + 0.2), None]);
        let b = batch(vec![2, 1], vec![None, Some(0.3)]);
        assert_eq!(canonical_rows(&[a]), canonical_rows(&[b]));
        let c = batch(vec![1, 2], vec![Some(0.31), None]);
        assert_ne!(
            canonical_rows(&[c]),
            canonical_rows(&[batch(vec![1, 2], vec![Some(0.3), None])])
        );
    }
}
