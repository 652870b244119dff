//! Per-column min/max/null-count statistics of a shard file, computed while it is written.

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::Result;
use datafusion::functions_aggregate::min_max::{MaxAccumulator, MinAccumulator};
use datafusion::logical_expr::Accumulator;
use shoal_catalog::ColumnStats;

use crate::arrow_codec::encode_scalar;

/// Accumulates statistics over the batches of one file.
pub struct ColumnStatsBuilder {
    columns: Vec<Option<(MinAccumulator, MaxAccumulator)>>,
    null_counts: Vec<u64>,
}

/// Types whose min/max prune usefully; nested types only count nulls.
fn has_min_max(data_type: &DataType) -> bool {
    data_type.is_primitive()
        || matches!(
            data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Boolean | DataType::Binary
        )
}

impl ColumnStatsBuilder {
    pub fn try_new(schema: &SchemaRef) -> Result<Self> {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                if has_min_max(f.data_type()) {
                    Ok(Some((
                        MinAccumulator::try_new(f.data_type())?,
                        MaxAccumulator::try_new(f.data_type())?,
                    )))
                } else {
                    Ok(None)
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            null_counts: vec![0; columns.len()],
            columns,
        })
    }

    pub fn update(&mut self, batch: &RecordBatch) -> Result<()> {
        for (i, column) in batch.columns().iter().enumerate() {
            self.null_counts[i] += column.null_count() as u64;
            if let Some((min, max)) = &mut self.columns[i] {
                min.update_batch(std::slice::from_ref(column))?;
                max.update_batch(std::slice::from_ref(column))?;
            }
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<ColumnStats>> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (i, column) in self.columns.iter_mut().enumerate() {
            let (min, max) = match column {
                Some((min, max)) => {
                    let (min, max) = (min.evaluate()?, max.evaluate()?);
                    let encode = |v: datafusion::common::ScalarValue| -> Result<Option<Vec<u8>>> {
                        if v.is_null() {
                            Ok(None)
                        } else {
                            Ok(Some(encode_scalar(&v)?))
                        }
                    };
                    (encode(min)?, encode(max)?)
                }
                None => (None, None),
            };
            out.push(ColumnStats {
                null_count: self.null_counts[i],
                min,
                max,
            });
        }
        Ok(out)
    }
}
