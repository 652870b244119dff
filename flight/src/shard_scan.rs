//! `ShardScanExec`: reads a table's shard files, one output partition per bucket, on the
//! executor that owns them.
//!
//! The coordinator plans it with the files that survived min/max pruning; the distributed
//! planner then splits it into one variant per owning executor (see the coordinator's
//! `shard_routing`), so each task reads only local files. Run anywhere else (for example in a
//! single-task plan on the coordinator), it asks an owner to scan the files and stream them.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::SchemaRef;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{ColumnStatistics, DataFusionError, Result, Statistics};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{
    BaselineMetrics, Count, ExecutionPlanMetricsSet, MetricBuilder, MetricType, MetricsSet,
    RecordOutput,
};
use datafusion::physical_plan::spill::get_record_batch_memory_size;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{StreamExt, TryStreamExt, stream};
use serde::{Deserialize, Serialize};

use crate::arrow_codec::encode_schema;
use crate::error::{is_unreachable, status_to_datafusion};
use crate::executor_client;
use crate::rpc::ScanShardRequest;
use crate::scan_predicate::encode_predicate;
use crate::shard_reader;

/// One shard file as a scan sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFileRef {
    pub path: String,
    pub rows: u64,
    pub bytes: u64,
    /// Flight addresses of the executors holding a copy, preferred first.
    pub owners: Vec<String>,
}

/// The files of one bucket: one output partition of the scan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardPartition {
    pub bucket: u32,
    pub files: Vec<ShardFileRef>,
}

/// Session extension present on executors: where this executor keeps its shard files.
#[derive(Debug, Clone)]
pub struct LocalShardStore {
    pub data_dir: PathBuf,
    /// This executor's Flight address, as the catalog lists it among shard owners.
    pub address: String,
}

#[derive(Debug, Clone)]
pub struct ShardScanExec {
    table: String,
    table_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    partitions: Vec<ShardPartition>,
    /// Buckets of the table before pruning (for EXPLAIN).
    total_buckets: u32,
    /// The executor this variant was routed to, once the distributed planner has decided.
    executor: Option<String>,
    /// The distribution column, when partition `i` is exactly bucket `i` of every bucket, so
    /// that the output is hash-partitioned the way DataFusion's repartitioning would do it; in
    /// a task's variant, partition `p` holds the `p`-th of the task's buckets.
    hash_key: Option<String>,
    /// Per-column statistics of the scanned files (table columns, not projected), for the
    /// planner; they stay on the coordinator.
    column_statistics: Option<Arc<Vec<ColumnStatistics>>>,
    /// The query's filters over the table's columns, used to skip row groups (rows are still
    /// filtered above the scan).
    predicate: Option<Arc<dyn PhysicalExpr>>,
    properties: Arc<PlanProperties>,
    metrics: ExecutionPlanMetricsSet,
}

impl ShardScanExec {
    pub fn try_new(
        table: impl Into<String>,
        table_schema: SchemaRef,
        projection: Option<Vec<usize>>,
        partitions: Vec<ShardPartition>,
        total_buckets: u32,
        executor: Option<String>,
    ) -> Result<Self> {
        let schema = match &projection {
            Some(p) => Arc::new(table_schema.project(p)?),
            None => Arc::clone(&table_schema),
        };
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::UnknownPartitioning(partitions.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Ok(Self {
            table: table.into(),
            table_schema,
            projection,
            partitions,
            total_buckets,
            executor,
            hash_key: None,
            column_statistics: None,
            predicate: None,
            properties,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// Declares the output hash-partitioned on the distribution column `key`: the writer put
    /// each row in bucket `hash(key) % total_buckets` with DataFusion's repartition hash, so
    /// when partition `i` is bucket `i` DataFusion can join and aggregate tables distributed on
    /// the same key bucket by bucket, with no shuffle. Otherwise the scan is left as it is.
    pub fn with_hash_partitioning(self, key: &str) -> Result<Self> {
        let complete = self.partitions.len() == self.total_buckets as usize
            && self
                .partitions
                .iter()
                .enumerate()
                .all(|(i, p)| p.bucket as usize == i);
        if !complete || self.total_buckets < 2 {
            return Ok(self);
        }
        Ok(self.declare_hash_partitioning(key))
    }

    /// Declares `Hash(key, partitions)` without checking the layout: for the variants of a
    /// hash-partitioned scan, whose tasks line up bucket by bucket (so that operators built
    /// over them, such as a union's interleave, see the shape they were planned with).
    pub fn declare_hash_partitioning(mut self, key: &str) -> Self {
        let schema = self.schema();
        let Ok(index) = schema.index_of(key) else {
            return self;
        };
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new(key, index));
        self.properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(schema),
            Partitioning::Hash(vec![column], self.partitions.len().max(1)),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        self.hash_key = Some(key.to_string());
        self
    }

    /// Lets every file read skip the row groups whose statistics rule out `predicate` (an
    /// expression over the table schema).
    pub fn with_predicate(mut self, predicate: Option<Arc<dyn PhysicalExpr>>) -> Self {
        self.predicate = predicate;
        self
    }

    pub fn predicate(&self) -> Option<&Arc<dyn PhysicalExpr>> {
        self.predicate.as_ref()
    }

    /// Attaches per-column statistics of the table's scanned files (one entry per table column).
    pub fn with_column_statistics(mut self, statistics: Arc<Vec<ColumnStatistics>>) -> Self {
        self.column_statistics = Some(statistics);
        self
    }

    /// The distribution column the output is hash-partitioned on, if partition `i` is bucket `i`.
    pub fn hash_key(&self) -> Option<&str> {
        self.hash_key.as_deref()
    }

    pub fn table(&self) -> &str {
        &self.table
    }
    pub fn table_schema(&self) -> &SchemaRef {
        &self.table_schema
    }
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.projection.as_ref()
    }
    pub fn partitions(&self) -> &[ShardPartition] {
        &self.partitions
    }
    pub fn total_buckets(&self) -> u32 {
        self.total_buckets
    }
    pub fn executor(&self) -> Option<&str> {
        self.executor.as_deref()
    }

    /// The same scan over other partitions, routed to `executor`; `partition_count` pads with
    /// empty partitions so that every task variant has the same shape.
    pub fn variant(
        &self,
        mut partitions: Vec<ShardPartition>,
        partition_count: usize,
        executor: Option<String>,
    ) -> Result<Self> {
        while partitions.len() < partition_count {
            partitions.push(ShardPartition {
                bucket: u32::MAX,
                files: vec![],
            });
        }
        let mut variant = Self::try_new(
            self.table.clone(),
            Arc::clone(&self.table_schema),
            self.projection.clone(),
            partitions,
            self.total_buckets,
            executor,
        )?;
        variant.column_statistics = self.column_statistics.clone();
        variant.predicate = self.predicate.clone();
        Ok(match &self.hash_key {
            Some(key) => variant.declare_hash_partitioning(key),
            None => variant,
        })
    }

    fn scanned_files(&self) -> impl Iterator<Item = &ShardFileRef> {
        self.partitions.iter().flat_map(|p| p.files.iter())
    }
}

impl DisplayAs for ShardScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let buckets: Vec<String> = self
            .partitions
            .iter()
            .filter(|p| !p.files.is_empty())
            .map(|p| p.bucket.to_string())
            .collect();
        let rows: u64 = self.scanned_files().map(|f| f.rows).sum();
        write!(
            f,
            "ShardScanExec: table={}, shards=[{}] of {}, files={}, rows={}",
            self.table,
            buckets.join(","),
            self.total_buckets,
            self.scanned_files().count(),
            rows
        )?;
        if let Some(key) = &self.hash_key {
            write!(f, ", partitioned_by={key}")?;
        }
        if let Some(p) = self
            .projection
            .as_ref()
            .filter(|p| p.len() < self.table_schema.fields().len())
        {
            let names: Vec<&str> = p
                .iter()
                .map(|i| self.table_schema.field(*i).name().as_str())
                .collect();
            write!(f, ", projection=[{}]", names.join(", "))?;
        }
        match &self.executor {
            Some(executor) => write!(f, ", executor={executor}")?,
            // Not split into tasks (a single-task plan): each file is scanned by its first
            // live owner and streamed to where this node runs.
            None => {
                let mut owners: Vec<&str> = self
                    .scanned_files()
                    .filter_map(|file| file.owners.first().map(String::as_str))
                    .collect();
                owners.dedup();
                if !owners.is_empty() {
                    write!(f, ", scanned_on=[{}]", owners.join(", "))?;
                }
            }
        }
        Ok(())
    }
}

impl ExecutionPlan for ShardScanExec {
    fn name(&self) -> &str {
        "ShardScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn partition_statistics(&self, partition: Option<usize>) -> Result<Arc<Statistics>> {
        let files: Vec<&ShardFileRef> = match partition {
            Some(i) => self
                .partitions
                .get(i)
                .map(|p| p.files.iter().collect())
                .unwrap_or_default(),
            None => self.scanned_files().collect(),
        };
        let rows: u64 = files.iter().map(|f| f.rows).sum();
        let bytes: u64 = files.iter().map(|f| f.bytes).sum();
        let mut stats = Statistics::new_unknown(&self.schema());
        stats.num_rows = Precision::Exact(rows as usize);
        // Compressed Parquet bytes: a lower bound of the in-memory size.
        stats.total_byte_size = Precision::Inexact(bytes as usize);
        if let Some(columns) = &self.column_statistics {
            let projected: Vec<ColumnStatistics> = match &self.projection {
                Some(p) => p.iter().filter_map(|i| columns.get(*i).cloned()).collect(),
                None => columns.as_ref().clone(),
            };
            if projected.len() == stats.column_statistics.len() {
                stats.column_statistics = match partition {
                    // Table-wide bounds also bound one partition, but no longer exactly.
                    Some(_) => projected.into_iter().map(|c| c.to_inexact()).collect(),
                    None => projected,
                };
            }
        }
        Ok(Arc::new(stats))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let Some(part) = self.partitions.get(partition) else {
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                schema,
                stream::empty(),
            )));
        };
        let local = context.session_config().get_extension::<LocalShardStore>();
        let summary = || MetricBuilder::new(&self.metrics).with_type(MetricType::Summary);
        let scan = FileScan {
            table_schema: Arc::clone(&self.table_schema),
            projection: self.projection.clone(),
            schema: Arc::clone(&schema),
            local,
            predicate: self.predicate.clone(),
            predicate_bytes: self.predicate.as_ref().and_then(encode_predicate),
            local_bytes: summary().counter("local_bytes", partition),
            remote_bytes: summary().counter("remote_bytes", partition),
        };
        let baseline = BaselineMetrics::new(&self.metrics, partition);
        let files = part.files.clone();
        let batches = stream::iter(files)
            .then(move |file| {
                let scan = scan.clone();
                async move { scan.open(file).await }
            })
            .try_flatten()
            .map_ok(move |batch| batch.record_output(&baseline));
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// What one partition's files need to be opened, locally or through an owner.
#[derive(Clone)]
struct FileScan {
    table_schema: SchemaRef,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    local: Option<Arc<LocalShardStore>>,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// `predicate` encoded for owners that scan on this node's behalf.
    predicate_bytes: Option<Vec<u8>>,
    /// Parquet bytes read from this executor's disk.
    local_bytes: Count,
    /// Arrow bytes streamed from another executor.
    remote_bytes: Count,
}

impl FileScan {
    async fn open(&self, file: ShardFileRef) -> Result<SendableRecordBatchStream> {
        if let Some(store) = &self.local
            && file.owners.iter().any(|o| o == &store.address)
        {
            self.local_bytes.add(file.bytes as usize);
            return shard_reader::read_local(
                &store.data_dir,
                vec![file.path],
                Arc::clone(&self.table_schema),
                self.projection.clone(),
                self.predicate.clone(),
            );
        }
        self.open_remote(file).await
    }

    /// Asks the owners in order; an unreachable owner is skipped, any other error is final.
    async fn open_remote(&self, file: ShardFileRef) -> Result<SendableRecordBatchStream> {
        // Zero-column batches do not survive IPC with their row count: fetch one column and drop it.
        let count_only = self.schema.fields().is_empty();
        let projection = match (&self.projection, count_only) {
            (_, true) => Some(vec![0]),
            (p, false) => p.clone(),
        };
        let fetched_schema = match &projection {
            Some(p) => Arc::new(self.table_schema.project(p)?),
            None => Arc::clone(&self.table_schema),
        };
        let request = ScanShardRequest {
            paths: vec![file.path.clone()],
            schema_ipc: encode_schema(&self.table_schema),
            projection,
            predicate: self.predicate_bytes.clone(),
        };
        let mut last_error = None;
        for owner in &file.owners {
            match executor_client::scan_shard(owner, &request, Arc::clone(&fetched_schema)).await {
                Ok(stream) if count_only => {
                    let schema = Arc::clone(&self.schema);
                    let counted = stream.map_ok(move |b: RecordBatch| {
                        let options = RecordBatchOptions::new().with_row_count(Some(b.num_rows()));
                        RecordBatch::try_new_with_options(Arc::clone(&schema), vec![], &options)
                            .expect("zero columns always match")
                    });
                    return Ok(Box::pin(RecordBatchStreamAdapter::new(
                        Arc::clone(&self.schema),
                        counted,
                    )));
                }
                Ok(stream) => {
                    let remote_bytes = self.remote_bytes.clone();
                    let counted = stream.map_ok(move |b: RecordBatch| {
                        remote_bytes.add(get_record_batch_memory_size(&b));
                        b
                    });
                    return Ok(Box::pin(RecordBatchStreamAdapter::new(
                        Arc::clone(&self.schema),
                        counted,
                    )));
                }
                Err(status) if is_unreachable(&status) => last_error = Some(status),
                Err(status) => return Err(status_to_datafusion(status)),
            }
        }
        Err(DataFusionError::Execution(format!(
            "no live replica of shard file {} (owners: {}){}",
            file.path,
            file.owners.join(", "),
            last_error
                .map(|s| format!(": {}", s.message()))
                .unwrap_or_default()
        )))
    }
}
