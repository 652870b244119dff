//! `ShardWriteSink`: the write path. Rows are hash-partitioned on the distribution column into
//! the table's buckets, each bucket's rows are written as Parquet on every owner executor, and
//! one Raft `CommitWrite` makes all new files visible at once, only after every copy is durable.
//! A bucket's files are key-disjoint (see `key_sorted_runs`), so a lookup opens one file.

use std::collections::VecDeque;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::common::runtime::SpawnedTask;
use datafusion::common::{DataFusionError, Result, exec_datafusion_err};
use datafusion::datasource::sink::DataSink;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_plan::repartition::BatchPartitioner;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType};
use futures::StreamExt;
use futures::future::join_all;
use shoal_catalog::{CatalogError, Command, Response, ShardFile, TableDef, TxnId};
use shoal_flight::arrow_codec::encode_schema;
use shoal_flight::error::coded;
use shoal_flight::executor_client;
use shoal_flight::rpc::{WriteShardRequest, WriteShardResponse};
use shoal_flight::wire_types::cast_batch;
use tonic::Code;
use tracing::{info, warn};

use crate::bucketing::bucket_partitioner;
use crate::cluster::{Cluster, catalog_error};
use crate::executor_registry::ExecutorRegistry;
use crate::key_sorted_runs::{KeyBoundaryFiles, KeySortedRuns, sorted_by_key};

/// Rows per shard file, and per sorted run held in memory for each bucket.
pub const ROWS_PER_FILE: usize = 1_000_000;
/// Files written at once: the coordinator sorts and merges the next file while executors
/// encode the previous ones, instead of the two taking turns.
const FILES_IN_FLIGHT: usize = 2;

#[derive(Debug)]
pub struct ShardWriteSink {
    cluster: Arc<Cluster>,
    table: TableDef,
    schema: SchemaRef,
    replace: bool,
}

impl ShardWriteSink {
    pub fn new(cluster: Arc<Cluster>, table: TableDef, schema: SchemaRef, replace: bool) -> Self {
        Self {
            cluster,
            table,
            schema,
            replace,
        }
    }
}

impl DisplayAs for ShardWriteSink {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        write!(
            f,
            "ShardWriteSink: table={}, shards={}, replication={}",
            self.table.name, self.table.shard_count, self.table.replication
        )
    }
}

#[async_trait]
impl DataSink for ShardWriteSink {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    async fn write_all(
        &self,
        data: SendableRecordBatchStream,
        context: &Arc<TaskContext>,
    ) -> Result<u64> {
        let (txn, table) = match self
            .cluster
            .propose(Command::BeginWrite {
                table: self.table.name.clone(),
            })
            .await?
        {
            Response::WriteBegun { txn, table } => (txn, table),
            other => {
                return Err(exec_datafusion_err!(
                    "unexpected catalog response {other:?}"
                ));
            }
        };
        if table.id != self.table.id {
            return Err(coded(
                Code::Aborted,
                format!(
                    "table '{}' was replaced while the statement was planned",
                    table.name
                ),
            ));
        }
        let mut writer =
            BucketWriter::try_new(&self.cluster, table, Arc::clone(&self.schema), txn, context)?;
        match writer.write_stream(data).await {
            Ok(()) => {
                let rows = writer.rows;
                let files = std::mem::take(&mut writer.written);
                let committed = self
                    .cluster
                    .catalog
                    .propose(Command::CommitWrite {
                        txn,
                        files: files.clone(),
                        replace: self.replace,
                    })
                    .await;
                match committed {
                    Ok(Response::WriteCommitted { replaced, .. }) => {
                        info!(table = %self.table.name, txn, rows, files = files.len(), "write committed");
                        collect_garbage(&self.cluster, replaced).await;
                        Ok(rows)
                    }
                    Ok(other) => Err(exec_datafusion_err!(
                        "unexpected catalog response {other:?}"
                    )),
                    // Only a refusal proves the files are not visible; after a timeout the
                    // commit may still have applied, so the files stay (orphans at worst).
                    Err(e @ CatalogError::Rejected(_)) => {
                        collect_garbage(&self.cluster, files).await;
                        Err(catalog_error(e))
                    }
                    Err(e) => Err(catalog_error(e)),
                }
            }
            Err(e) => {
                warn!(table = %self.table.name, txn, error = %e, "write failed; aborting");
                let _ = self.cluster.propose(Command::AbortWrite { txn }).await;
                // No copy may land after its file was collected.
                writer.settle().await;
                collect_garbage(&self.cluster, std::mem::take(&mut writer.written)).await;
                Err(e)
            }
        }
    }
}

/// Buffers rows per bucket and writes them to the bucket's owners: directly when the table
/// has no distribution key, else through sorted runs merged at the end.
struct BucketWriter {
    table: TableDef,
    schema: SchemaRef,
    txn: TxnId,
    partitioner: Option<BatchPartitioner>,
    buffers: Vec<(Vec<RecordBatch>, usize)>,
    owner_addresses: Vec<Vec<String>>,
    runs: Option<KeySortedRuns>,
    written: Vec<ShardFile>,
    /// Copies being written: the index of their file in `written`, and the write itself.
    in_flight: VecDeque<(usize, SpawnedTask<Result<WriteShardResponse>>)>,
    rows: u64,
    files_started: usize,
}

impl BucketWriter {
    fn try_new(
        cluster: &Cluster,
        table: TableDef,
        schema: SchemaRef,
        txn: TxnId,
        context: &Arc<TaskContext>,
    ) -> Result<Self> {
        let partitioner = match &table.distribution {
            Some(column) if table.shard_count > 1 => {
                Some(bucket_partitioner(&schema, column, table.shard_count)?)
            }
            _ => None,
        };
        let state = cluster.catalog.state();
        let addresses = ExecutorRegistry::addresses(&state);
        let mut owner_addresses = Vec::new();
        for owners in &table.placement {
            let mut list = Vec::new();
            for id in owners {
                if !cluster.executors.is_live(*id) {
                    return Err(coded(
                        Code::Unavailable,
                        format!(
                            "executor {id}, which holds a replica of table '{}', is not available; try again when it is back",
                            table.name
                        ),
                    ));
                }
                list.push(addresses[id].clone());
            }
            owner_addresses.push(list);
        }
        let buckets = table.shard_count as usize;
        let runs = table
            .distribution
            .as_deref()
            .map(|key| KeySortedRuns::new(Arc::clone(&schema), key, buckets, context));
        Ok(Self {
            buffers: vec![(Vec::new(), 0); buckets],
            runs,
            table,
            schema,
            txn,
            partitioner,
            owner_addresses,
            written: Vec::new(),
            in_flight: VecDeque::new(),
            rows: 0,
            files_started: 0,
        })
    }

    async fn write_stream(&mut self, mut data: SendableRecordBatchStream) -> Result<()> {
        while let Some(batch) = data.next().await {
            let batch = cast_batch(&batch?, &self.schema)?;
            if batch.num_rows() == 0 {
                continue;
            }
            self.rows += batch.num_rows() as u64;
            let parts: Vec<(usize, RecordBatch)> = match &mut self.partitioner {
                Some(p) => p.partition_iter(batch)?.collect::<Result<_>>()?,
                None => vec![(0, batch)],
            };
            for (bucket, part) in parts {
                let (batches, rows) = &mut self.buffers[bucket];
                *rows += part.num_rows();
                batches.push(part);
                if *rows >= ROWS_PER_FILE {
                    let (batches, rows) = std::mem::take(&mut self.buffers[bucket]);
                    match &mut self.runs {
                        Some(runs) => runs.spill(bucket, batches)?,
                        None => self.write_file(bucket, batches, rows).await?,
                    }
                }
            }
        }
        for bucket in 0..self.buffers.len() {
            let (batches, rows) = std::mem::take(&mut self.buffers[bucket]);
            match &mut self.runs {
                Some(runs) if runs.has_runs(bucket) => {
                    let key = self.table.distribution.clone().expect("runs need a key");
                    let merged = runs.merged(bucket, batches)?;
                    let mut files = KeyBoundaryFiles::new(merged, &key, ROWS_PER_FILE)?;
                    while let Some((batches, rows)) = files.next_file().await? {
                        self.write_file(bucket, batches, rows).await?;
                    }
                }
                _ => {
                    let key = self.table.distribution.as_deref();
                    let batches = sorted_by_key(&self.schema, key, batches)?;
                    self.write_file(bucket, batches, rows).await?;
                }
            }
        }
        while !self.in_flight.is_empty() {
            self.finish_oldest_file().await?;
        }
        Ok(())
    }

    /// Starts writing `batches` as one new file of `bucket` on every owner (all copies or
    /// none), once fewer than [`FILES_IN_FLIGHT`] files are being written.
    async fn write_file(
        &mut self,
        bucket: usize,
        batches: Vec<RecordBatch>,
        rows: usize,
    ) -> Result<()> {
        if rows == 0 {
            return Ok(());
        }
        while self.in_flight.len() >= FILES_IN_FLIGHT {
            self.finish_oldest_file().await?;
        }
        self.files_started += 1;
        let path = format!(
            "shards/t{}/b{bucket}/w{}-{}.parquet",
            self.table.id, self.txn, self.files_started
        );
        let request = WriteShardRequest {
            path: path.clone(),
            schema_ipc: encode_schema(&self.schema),
        };
        // Recorded before the copies are made, so a failure cleans up partial copies too.
        self.written.push(ShardFile {
            id: 0,
            table_id: self.table.id,
            bucket: bucket as u32,
            path,
            rows: rows as u64,
            bytes: 0,
            column_stats: vec![],
            owners: self.table.placement[bucket].clone(),
            txn: self.txn,
        });
        let owners = self.owner_addresses[bucket].clone();
        let schema = Arc::clone(&self.schema);
        let write = SpawnedTask::spawn(async move {
            // Every copy settles before the write does, so none lands after a failed write's
            // files were collected.
            let copies = join_all(owners.iter().map(|address| {
                executor_client::write_shard(
                    address,
                    &request,
                    Arc::clone(&schema),
                    batches.clone(),
                )
            }))
            .await;
            let mut first = None;
            for copy in copies {
                let copy = copy.map_err(shoal_flight::status_to_datafusion)?;
                first.get_or_insert(copy);
            }
            first.ok_or_else(|| exec_datafusion_err!("bucket {bucket} has no owners"))
        });
        self.in_flight.push_back((self.written.len() - 1, write));
        Ok(())
    }

    /// Waits for every file still being written, whatever the outcome.
    async fn settle(&mut self) {
        for (_, write) in self.in_flight.drain(..) {
            let _ = write.join().await;
        }
    }

    /// Waits for the oldest file being written and records its size and statistics.
    async fn finish_oldest_file(&mut self) -> Result<()> {
        let Some((index, write)) = self.in_flight.pop_front() else {
            return Ok(());
        };
        let first = write
            .join_unwind()
            .await
            .map_err(|e| DataFusionError::ExecutionJoin(Box::new(e)))??;
        let file = &mut self.written[index];
        file.bytes = first.bytes;
        file.column_stats = first.column_stats;
        Ok(())
    }
}

/// Deletes files no committed version references (best effort: a failure leaves an orphan
/// file, never a visible one).
pub async fn collect_garbage(cluster: &Cluster, files: Vec<ShardFile>) {
    if files.is_empty() {
        return;
    }
    let state = cluster.catalog.state();
    let addresses = ExecutorRegistry::addresses(&state);
    let mut per_owner: std::collections::HashMap<String, Vec<String>> = Default::default();
    for file in files {
        for owner in &file.owners {
            if let Some(address) = addresses.get(owner) {
                per_owner
                    .entry(address.clone())
                    .or_default()
                    .push(file.path.clone());
            }
        }
    }
    for (address, paths) in per_owner {
        if let Err(status) = executor_client::delete_files(&address, paths).await {
            warn!(%address, error = %status.message(), "could not delete garbage shard files");
        }
    }
}
