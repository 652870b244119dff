//! `ShardTable`: a Shoal table as DataFusion sees it. Scans become `ShardScanExec` over the
//! files that survive min/max pruning; inserts become a `ShardWriteSink`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, Result};
use datafusion::datasource::sink::DataSinkExec;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::dml::InsertOp;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use shoal_catalog::{ExecutorId, ShardFile, TableDef};
use shoal_flight::{ShardFileRef, ShardPartition, ShardScanExec};

use crate::bucketing::buckets_matching;
use crate::cluster::Cluster;
use crate::pruning::prune_files;
use crate::shard_write_sink::ShardWriteSink;
use crate::table_statistics::column_statistics;

#[derive(Debug)]
pub struct ShardTable {
    def: TableDef,
    schema: SchemaRef,
    files: Vec<ShardFile>,
    addresses: HashMap<ExecutorId, String>,
    live: HashSet<ExecutorId>,
    cluster: Arc<Cluster>,
}

impl ShardTable {
    pub fn new(
        def: TableDef,
        schema: SchemaRef,
        files: Vec<ShardFile>,
        addresses: HashMap<ExecutorId, String>,
        live: HashSet<ExecutorId>,
        cluster: Arc<Cluster>,
    ) -> Self {
        Self {
            def,
            schema,
            files,
            addresses,
            live,
            cluster,
        }
    }

    pub fn def(&self) -> &TableDef {
        &self.def
    }

    /// Owner addresses of a file, live executors first (in placement order).
    fn owners(&self, file: &ShardFile) -> Vec<String> {
        let (live, dead): (Vec<_>, Vec<_>) =
            file.owners.iter().partition(|id| self.live.contains(id));
        live.into_iter()
            .chain(dead)
            .filter_map(|id| self.addresses.get(id).cloned())
            .collect()
    }
}

#[async_trait]
impl TableProvider for ShardTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters prune whole files; rows are still filtered above the scan.
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let predicate = match conjunction(filters.iter().cloned()) {
            Some(expr) => {
                let df_schema = DFSchema::try_from(Arc::clone(&self.schema))?;
                Some(state.create_physical_expr(expr, &df_schema)?)
            }
            None => None,
        };
        let buckets = match &self.def.distribution {
            Some(column) => buckets_matching(&self.schema, column, self.def.shard_count, filters)?,
            None => None,
        };
        let candidates = self
            .files
            .iter()
            .filter(|f| buckets.as_ref().is_none_or(|b| b.contains(&f.bucket)))
            .collect();
        let kept = prune_files(&self.schema, predicate.clone(), candidates)?;
        let statistics = Arc::new(column_statistics(&self.schema, &kept));
        let mut buckets: BTreeMap<u32, Vec<ShardFileRef>> = BTreeMap::new();
        for file in kept {
            buckets.entry(file.bucket).or_default().push(ShardFileRef {
                path: file.path.clone(),
                rows: file.rows,
                bytes: file.bytes,
                owners: self.owners(file),
            });
        }
        // Reading several buckets with the distribution column: keep one partition per bucket,
        // empty or not, so the output is hash-partitioned and co-located joins need no shuffle.
        let hash_key = self.def.distribution.as_deref().filter(|key| {
            buckets.len() > 1
                && projection.is_none_or(|p| {
                    p.iter()
                        .any(|i| self.schema.field(*i).name().as_str() == *key)
                })
        });
        if hash_key.is_some() {
            for bucket in 0..self.def.shard_count {
                buckets.entry(bucket).or_default();
            }
        }
        let partitions = buckets
            .into_iter()
            .map(|(bucket, files)| ShardPartition { bucket, files })
            .collect();
        let scan = ShardScanExec::try_new(
            self.def.name.clone(),
            Arc::clone(&self.schema),
            projection.cloned(),
            partitions,
            self.def.shard_count,
            None,
        )?
        .with_column_statistics(statistics)
        .with_predicate(predicate);
        Ok(Arc::new(match hash_key {
            Some(key) => scan.with_hash_partitioning(key)?,
            None => scan,
        }))
    }

    async fn insert_into(
        &self,
        _state: &dyn Session,
        input: Arc<dyn ExecutionPlan>,
        insert_op: InsertOp,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let replace = match insert_op {
            InsertOp::Append => false,
            InsertOp::Overwrite | InsertOp::Replace => true,
        };
        let sink = ShardWriteSink::new(
            Arc::clone(&self.cluster),
            self.def.clone(),
            Arc::clone(&self.schema),
            replace,
        );
        Ok(Arc::new(DataSinkExec::new(input, Arc::new(sink), None)))
    }
}
