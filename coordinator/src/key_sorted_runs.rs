//! `KeySortedRuns`: an external sort on the distribution key, one per bucket, so that a write
//! leaves each bucket's shard files key-disjoint. Rows arrive interleaved from parallel
//! readers; cutting a bucket into files in arrival order gave every file nearly the whole key
//! range, and a point lookup had to open all of them. Full buffers are sorted and spilled to
//! the coordinator's disk as runs; at the end each bucket's runs are merged and cut into
//! files at key changes, so one key lives in one file.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, Scalar};
use arrow::compute::kernels::cmp::eq;
use arrow::compute::{SortOptions, concat_batches, sort_to_indices, take_record_batch};
use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::execution::memory_pool::MemoryConsumer;
use datafusion::execution::spill_file::SpillFile;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{LexOrdering, PhysicalSortExpr};
use datafusion::physical_plan::SpillManager;
use datafusion::physical_plan::expressions::col;
use datafusion::physical_plan::memory::MemoryStream;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, SpillMetrics};
use datafusion::physical_plan::sorts::streaming_merge::StreamingMergeBuilder;
use futures::StreamExt;

/// Rows per merged output batch.
const MERGE_BATCH_ROWS: usize = 8192;

/// Sorted runs of every bucket of one write, spilled to the coordinator's disk.
pub struct KeySortedRuns {
    schema: SchemaRef,
    key: String,
    runs: Vec<Vec<Arc<dyn SpillFile>>>,
    spill: SpillManager,
    context: Arc<TaskContext>,
    metrics: ExecutionPlanMetricsSet,
}

impl KeySortedRuns {
    pub fn new(schema: SchemaRef, key: &str, buckets: usize, context: &Arc<TaskContext>) -> Self {
        let metrics = ExecutionPlanMetricsSet::new();
        let spill = SpillManager::new(
            context.runtime_env(),
            SpillMetrics::new(&metrics, 0),
            Arc::clone(&schema),
        );
        Self {
            schema,
            key: key.to_string(),
            runs: vec![Vec::new(); buckets],
            spill,
            context: Arc::clone(context),
            metrics,
        }
    }

    /// Sorts `batches` on the key and keeps them on disk as one more run of `bucket`.
    pub fn spill(&mut self, bucket: usize, batches: Vec<RecordBatch>) -> Result<()> {
        let sorted = sorted_by_key(&self.schema, Some(&self.key), batches)?;
        if let Some(file) = self
            .spill
            .spill_record_batch_and_finish(&sorted, "shard write sorted run")?
        {
            self.runs[bucket].push(file);
        }
        Ok(())
    }

    /// True when `bucket` has rows on disk, so its last rows must be merged, not written alone.
    pub fn has_runs(&self, bucket: usize) -> bool {
        !self.runs[bucket].is_empty()
    }

    /// The bucket's spilled runs and its in-memory `rest`, merged into key order.
    pub fn merged(
        &mut self,
        bucket: usize,
        rest: Vec<RecordBatch>,
    ) -> Result<SendableRecordBatchStream> {
        let mut streams = Vec::new();
        for run in std::mem::take(&mut self.runs[bucket]) {
            streams.push(self.spill.read_spill_as_stream(run, None)?);
        }
        if !rest.is_empty() {
            let sorted = sorted_by_key(&self.schema, Some(&self.key), rest)?;
            streams.push(Box::pin(MemoryStream::try_new(
                sorted,
                Arc::clone(&self.schema),
                None,
            )?));
        }
        let ordering = LexOrdering::new(vec![PhysicalSortExpr::new(
            col(&self.key, &self.schema)?,
            SortOptions::default(),
        )])
        .expect("one sort expression");
        let reservation =
            MemoryConsumer::new("ShardWriteSink merge").register(self.context.memory_pool());
        StreamingMergeBuilder::new()
            .with_streams(streams)
            .with_schema(Arc::clone(&self.schema))
            .with_expressions(&ordering)
            .with_metrics(BaselineMetrics::new(&self.metrics, 0))
            .with_batch_size(MERGE_BATCH_ROWS)
            .with_reservation(reservation)
            .build()
    }
}

/// Cuts a key-ordered stream into files of `rows_per_file` rows, each extended to the end of
/// its last key, so that no key spans two files.
pub struct KeyBoundaryFiles {
    stream: SendableRecordBatchStream,
    key_index: usize,
    rows_per_file: usize,
    carry: Option<RecordBatch>,
}

impl KeyBoundaryFiles {
    pub fn new(stream: SendableRecordBatchStream, key: &str, rows_per_file: usize) -> Result<Self> {
        let key_index = stream.schema().index_of(key)?;
        Ok(Self {
            stream,
            key_index,
            rows_per_file,
            carry: None,
        })
    }

    /// The next file's batches and row count; `None` at the end of the stream.
    pub async fn next_file(&mut self) -> Result<Option<(Vec<RecordBatch>, usize)>> {
        let mut batches = Vec::new();
        let mut rows = 0;
        // Set once the file is full: rows repeating this key still belong to it.
        let mut boundary: Option<Scalar<ArrayRef>> = None;
        loop {
            let batch = match self.carry.take() {
                Some(batch) => batch,
                None => match self.stream.next().await.transpose()? {
                    Some(batch) => batch,
                    None => break,
                },
            };
            let n = batch.num_rows();
            if n == 0 {
                continue;
            }
            if let Some(boundary) = &boundary {
                let same = leading_true(&eq(batch.column(self.key_index), boundary)?);
                if same > 0 {
                    rows += same;
                    batches.push(batch.slice(0, same));
                }
                if same < n {
                    self.carry = Some(batch.slice(same, n - same));
                    break;
                }
                continue;
            }
            let take = (self.rows_per_file - rows).min(n);
            rows += take;
            batches.push(batch.slice(0, take));
            if rows == self.rows_per_file {
                boundary = Some(Scalar::new(batch.column(self.key_index).slice(take - 1, 1)));
                if take < n {
                    self.carry = Some(batch.slice(take, n - take));
                }
            }
        }
        Ok((rows > 0).then_some((batches, rows)))
    }
}

/// How many leading values are true (a null, as for a null key, ends the run).
fn leading_true(mask: &BooleanArray) -> usize {
    (0..mask.len())
        .position(|i| !(mask.is_valid(i) && mask.value(i)))
        .unwrap_or(mask.len())
}

/// `batches` as one batch sorted on the key (ascending, nulls first, as the merge expects).
/// Without a key the rows keep the order they were written in.
pub fn sorted_by_key(
    schema: &SchemaRef,
    key: Option<&str>,
    batches: Vec<RecordBatch>,
) -> Result<Vec<RecordBatch>> {
    let Some(key) = key else {
        return Ok(batches);
    };
    let all = concat_batches(schema, &batches)?;
    let order = sort_to_indices(
        all.column(schema.index_of(key)?),
        Some(SortOptions::default()),
        None,
    )?;
    Ok(vec![take_record_batch(&all, &order)?])
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Int64Array;
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::SessionContext;

    fn batch(schema: &SchemaRef, keys: Vec<i64>) -> RecordBatch {
        RecordBatch::try_new(Arc::clone(schema), vec![Arc::new(Int64Array::from(keys))]).unwrap()
    }

    fn keys(batches: &[RecordBatch]) -> Vec<i64> {
        batches
            .iter()
            .flat_map(|b| {
                let a = b.column(0).as_any().downcast_ref::<Int64Array>().unwrap();
                a.values().to_vec()
            })
            .collect()
    }

    #[tokio::test]
    async fn runs_merge_into_key_disjoint_files() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let context = SessionContext::new().task_ctx();
        let mut runs = KeySortedRuns::new(Arc::clone(&schema), "k", 2, &context);
        // Interleaved arrival: every run spans the whole key range; key 5 repeats across runs.
        runs.spill(1, vec![batch(&schema, vec![9, 5, 1, 7, 3])])
            .unwrap();
        runs.spill(1, vec![batch(&schema, vec![8, 2, 5, 6, 4])])
            .unwrap();
        assert!(runs.has_runs(1) && !runs.has_runs(0));
        let merged = runs
            .merged(1, vec![batch(&schema, vec![5, 0, 10])])
            .unwrap();
        let mut files = KeyBoundaryFiles::new(merged, "k", 5).unwrap();
        let mut all = Vec::new();
        while let Some((batches, rows)) = files.next_file().await.unwrap() {
            let file = keys(&batches);
            assert_eq!(file.len(), rows);
            all.push(file);
        }
        // The first file reaches 5 rows at key 4 and ends there; the second reaches 5 rows
        // on a 5 and takes the other 5s with it.
        assert_eq!(
            all,
            vec![vec![0, 1, 2, 3, 4], vec![5, 5, 5, 6, 7], vec![8, 9, 10]]
        );
    }

    #[tokio::test]
    async fn a_file_never_splits_a_repeated_key() {
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let stream: SendableRecordBatchStream = Box::pin(
            MemoryStream::try_new(
                vec![
                    batch(&schema, vec![1, 2, 2]),
                    batch(&schema, vec![2, 2]),
                    batch(&schema, vec![2, 3]),
                ],
                Arc::clone(&schema),
                None,
            )
            .unwrap(),
        );
        let mut files = KeyBoundaryFiles::new(stream, "k", 2).unwrap();
        let first = files.next_file().await.unwrap().unwrap();
        assert_eq!((keys(&first.0), first.1), (vec![1, 2, 2, 2, 2, 2], 6));
        let second = files.next_file().await.unwrap().unwrap();
        assert_eq!((keys(&second.0), second.1), (vec![3], 1));
        assert!(files.next_file().await.unwrap().is_none());
    }
}
