//! Glue to datafusion-distributed: the only module of this crate that names its types.
//!
//! Shoal decides three things for the planner: how many tasks a shard scan wants (one per
//! executor that owns its shards), which shards each task reads (the ones its executor owns),
//! and where each task runs (on that executor).

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::ipc::CompressionType;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, exec_err, internal_err};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::prelude::SessionConfig;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExt, DistributedLeafExec,
    RouteTasksEvent, RouteTasksEventResponse, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse,
    SessionStateBuilderExt, WorkerResolver,
};
use shoal_flight::{ShardPartition, ShardScanCodec, ShardScanExec};
use url::Url;

use crate::export_tasks::{ExportTasksExec, TasksSender};

/// Live executors' worker URLs, fixed for one query.
#[derive(Clone)]
struct LiveExecutors {
    urls: Vec<Url>,
}

impl WorkerResolver for LiveExecutors {
    fn get_urls(&self) -> Result<Vec<Url>, DataFusionError> {
        if self.urls.is_empty() {
            return Err(shoal_flight::error::coded(
                tonic::Code::Unavailable,
                "no executors are available to run the query",
            ));
        }
        Ok(self.urls.clone())
    }
}

/// Turns a session builder into one that plans distributed queries over `executor_addresses`.
pub fn distributed_session(
    builder: SessionStateBuilder,
    executor_addresses: &[String],
    shuffle_compression: Option<CompressionType>,
) -> Result<SessionStateBuilder> {
    let urls = executor_addresses
        .iter()
        .map(|a| {
            Url::parse(a)
                .map_err(|e| DataFusionError::Internal(format!("bad executor address {a}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    builder
        .with_distributed_worker_resolver(LiveExecutors { urls })
        .with_distributed_planner()
        .with_distributed_user_codec(ShardScanCodec)
        .with_distributed_desired_task_count_handler(desired_task_count)
        .with_distributed_scale_up_leaf_node_handler(scale_up_shard_scan)
        .with_distributed_route_tasks_handler(route_tasks)
        .with_distributed_compression(shuffle_compression)
}

/// The executor that should read a partition: the first (live-first) owner of its files.
fn preferred_owner(partition: &ShardPartition) -> Option<&str> {
    partition
        .files
        .first()
        .and_then(|f| f.owners.first())
        .map(String::as_str)
}

fn desired_task_count(ev: DesiredTaskCountEvent) -> Option<Result<DesiredTaskCountEventResponse>> {
    let scan = ev.plan.downcast_ref::<ShardScanExec>()?;
    let owners: std::collections::BTreeSet<&str> = scan
        .partitions()
        .iter()
        .filter_map(preferred_owner)
        .collect();
    Some(Ok(DesiredTaskCountEventResponse::desired(
        owners.len().max(1),
    )))
}

/// Splits a scan into one variant per task; each variant reads the buckets one executor owns.
fn scale_up_shard_scan(ev: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let scan = ev.plan.downcast_ref::<ShardScanExec>()?;
    let split = if scan.hash_key().is_some() {
        split_by_bucket(scan, ev.task_count)
    } else {
        split_by_owner(scan, ev.task_count)
    };
    Some(split.and_then(|variants| {
        Ok(ScaleUpLeafNodeEventResponse::new(Arc::new(
            DistributedLeafExec::try_new(Arc::clone(ev.plan), variants)?,
        )))
    }))
}

fn split_by_owner(scan: &ShardScanExec, task_count: usize) -> Result<Vec<Arc<dyn ExecutionPlan>>> {
    let task_count = task_count.max(1);
    let mut by_owner: BTreeMap<Option<String>, Vec<ShardPartition>> = BTreeMap::new();
    for partition in scan.partitions() {
        by_owner
            .entry(preferred_owner(partition).map(str::to_string))
            .or_default()
            .push(partition.clone());
    }
    // More owners than tasks: the extra groups join the tasks round-robin and are read remotely.
    let mut groups: Vec<(Option<String>, Vec<ShardPartition>)> = by_owner.into_iter().collect();
    while groups.len() > task_count {
        let (_, extra) = groups.pop().expect("non-empty");
        let target = groups.len() % task_count;
        groups[target].1.extend(extra);
    }
    while groups.len() < task_count {
        groups.push((None, vec![]));
    }
    let width = groups
        .iter()
        .map(|(_, p)| p.len())
        .max()
        .unwrap_or(0)
        .max(1);
    groups
        .into_iter()
        .map(|(owner, partitions)| {
            Ok(Arc::new(scan.variant(partitions, width, owner)?) as Arc<dyn ExecutionPlan>)
        })
        .collect()
}

/// Splits a hash-partitioned scan so that task `t` reads buckets `t, t + T, t + 2T, ...` as its
/// partitions `0, 1, 2, ...`. Every hash-partitioned scan in a stage is split the same way, so
/// partition `p` of task `t` holds the same keys in each of them: a co-located join. Placement
/// puts bucket `b` first on executor `b % n`, so with one task per executor every read is local.
fn split_by_bucket(scan: &ShardScanExec, task_count: usize) -> Result<Vec<Arc<dyn ExecutionPlan>>> {
    let task_count = task_count.max(1);
    let width = scan.partitions().len().div_ceil(task_count).max(1);
    (0..task_count)
        .map(|task| {
            let partitions: Vec<ShardPartition> = scan
                .partitions()
                .iter()
                .skip(task)
                .step_by(task_count)
                .cloned()
                .collect();
            let owner = partitions
                .iter()
                .find_map(preferred_owner)
                .map(str::to_string);
            Ok(Arc::new(scan.variant(partitions, width, owner)?) as Arc<dyn ExecutionPlan>)
        })
        .collect()
}

/// The executors of a stage's tasks: a stage that scans shards runs each task where its
/// variant's shards are; any other stage runs task `i` on live executor `i mod n`, so EXPLAIN
/// can say in advance where every task will run.
fn route_tasks(ev: RouteTasksEvent) -> Option<Result<RouteTasksEventResponse>> {
    use datafusion_distributed::DistributedGetterExt;
    let workers = match ev
        .task_ctx
        .session_config()
        .get_distributed_worker_resolver()
        .and_then(|r| r.get_urls())
    {
        Ok(urls) => urls,
        Err(e) => return Some(Err(e)),
    };
    Some(task_executors(ev.plan, ev.task_count, &workers).map(RouteTasksEventResponse::new))
}

/// The executor each variant of the first shard scan in a stage was built for.
fn scan_task_executors(stage: &Arc<dyn ExecutionPlan>) -> Option<Vec<Option<String>>> {
    let mut variants = None;
    let _ = stage.apply(|node| {
        if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>()
            && leaf.original().downcast_ref::<ShardScanExec>().is_some()
        {
            variants = Some(
                leaf.variants()
                    .iter()
                    .map(|v| {
                        v.downcast_ref::<ShardScanExec>()
                            .and_then(|s| s.executor().map(str::to_string))
                    })
                    .collect(),
            );
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    variants
}

/// The executor of each of a stage's `task_count` tasks: a scan task's shard owner, or else
/// worker `i mod n`. A scan under a union may have fewer variants than its stage has tasks
/// (the union hands its inputs to different tasks); such stages are spread like any other.
fn task_executors(
    stage: &Arc<dyn ExecutionPlan>,
    task_count: usize,
    workers: &[Url],
) -> Result<Vec<Url>> {
    let preferred = scan_task_executors(stage)
        .filter(|owners| owners.len() == task_count)
        .unwrap_or_else(|| vec![None; task_count]);
    if workers.is_empty() {
        return exec_err!("no executors are available to run the query");
    }
    Ok(preferred
        .iter()
        .enumerate()
        .map(|(i, owner)| {
            owner
                .as_deref()
                .and_then(|o| Url::parse(o).ok())
                .unwrap_or_else(|| workers[i % workers.len()].clone())
        })
        .collect())
}

/// Renders a distributed plan with its stages and tasks (for EXPLAIN); with metrics once it ran.
pub fn display_distributed_plan(plan: &Arc<dyn ExecutionPlan>, show_metrics: bool) -> String {
    datafusion_distributed::display_plan_ascii(plan.as_ref(), show_metrics)
}

/// A plan that has run to the end, with every task's metrics gathered from the executors:
/// summed over tasks, or kept per task (labelled `task_id`).
pub async fn plan_with_metrics(
    plan: Arc<dyn ExecutionPlan>,
    per_task: bool,
) -> Result<Arc<dyn ExecutionPlan>> {
    use datafusion_distributed::{DistributedMetricsFormat, rewrite_distributed_plan_with_metrics};
    let format = if per_task {
        DistributedMetricsFormat::PerTask
    } else {
        DistributedMetricsFormat::Aggregated
    };
    // Executors report metrics when their tasks end; one that died never will.
    tokio::time::timeout(
        std::time::Duration::from_secs(30),
        rewrite_distributed_plan_with_metrics(plan, format),
    )
    .await
    .map_err(|_| {
        DataFusionError::Execution("executors did not report metrics within 30 s".into())
    })?
}

/// Where every task of every stage runs, and the shards each scan task reads (for EXPLAIN).
pub fn describe_tasks(plan: &Arc<dyn ExecutionPlan>, config: &SessionConfig) -> Vec<String> {
    use datafusion_distributed::DistributedGetterExt;
    let workers = config
        .get_distributed_worker_resolver()
        .and_then(|r| r.get_urls())
        .unwrap_or_default();
    let mut lines = Vec::new();
    describe_stage_inputs(plan, &workers, &mut lines);
    lines
}

fn describe_stage_inputs(node: &Arc<dyn ExecutionPlan>, workers: &[Url], lines: &mut Vec<String>) {
    use datafusion_distributed::NetworkBoundaryExt;
    let Some(boundary) = node.as_ref().as_network_boundary() else {
        for child in node.children() {
            describe_stage_inputs(child, workers, lines);
        }
        return;
    };
    let stage = boundary.input_stage();
    let Some(stage_plan) = stage.local_plan() else {
        return;
    };
    let executors = task_executors(stage_plan, stage.task_count(), workers).unwrap_or_default();
    let scans = scan_task_shards(stage_plan);
    for (task, executor) in executors.iter().enumerate() {
        let reads: Vec<String> = scans
            .iter()
            .filter_map(|(table, tasks)| {
                tasks
                    .get(task)
                    .map(|shards| format!(" {table} shards=[{}]", shards.join(",")))
            })
            .collect();
        lines.push(format!(
            "Stage {} task {task}: executor={}{}",
            stage.num(),
            executor.as_str().trim_end_matches('/'),
            reads.concat()
        ));
    }
    describe_stage_inputs(stage_plan, workers, lines);
}

/// For each shard scan of a stage (not below its boundaries), the shards each task reads.
fn scan_task_shards(stage: &Arc<dyn ExecutionPlan>) -> Vec<(String, Vec<Vec<String>>)> {
    use datafusion_distributed::NetworkBoundaryExt;
    let mut scans = Vec::new();
    let _ = stage.apply(|node| {
        if node.as_ref().as_network_boundary().is_some() {
            return Ok(TreeNodeRecursion::Jump);
        }
        if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>()
            && let Some(original) = leaf.original().downcast_ref::<ShardScanExec>()
        {
            let tasks = leaf
                .variants()
                .iter()
                .filter_map(|v| v.downcast_ref::<ShardScanExec>())
                .map(|scan| {
                    scan.partitions()
                        .iter()
                        .filter(|p| !p.files.is_empty())
                        .map(|p| p.bucket.to_string())
                        .collect()
                })
                .collect();
            scans.push((original.table().to_string(), tasks));
        }
        Ok(TreeNodeRecursion::Continue)
    });
    scans
}

/// Where the tasks of a query's final stage run, once the stages are on their executors.
#[derive(Debug, Clone)]
pub struct FinalStageTasks {
    /// datafusion-distributed's id of the query.
    pub query_id: String,
    pub stage: usize,
    /// The executor (worker URL) of each task.
    pub executors: Vec<Url>,
    /// How many output partitions each task has.
    pub partitions_per_task: usize,
}

/// The tasks of the stage below `boundary`, a network boundary whose stage was sent out.
pub fn final_stage_tasks(boundary: &Arc<dyn ExecutionPlan>) -> Result<FinalStageTasks> {
    use datafusion_distributed::{NetworkBoundaryExt, Stage};
    let Some(network) = boundary.as_ref().as_network_boundary() else {
        return internal_err!("{} is not a network boundary", boundary.name());
    };
    let Stage::Remote(stage) = network.input_stage() else {
        return internal_err!("the final stage was not sent to the executors");
    };
    let partitions = boundary.properties().partitioning.partition_count();
    Ok(FinalStageTasks {
        query_id: stage.query_id.to_string(),
        stage: stage.num,
        executors: stage.workers.clone(),
        partitions_per_task: partitions / stage.workers.len().max(1),
    })
}

/// `plan` with a head that exports its final stage's tasks to clients instead of gathering
/// their rows, when that head only gathers them in no order (no ORDER BY merge, no LIMIT,
/// no final aggregate) and the stage runs as two tasks or more; `None` otherwise.
pub fn export_final_stage(
    plan: &Arc<dyn ExecutionPlan>,
    published: TasksSender,
) -> Option<Arc<dyn ExecutionPlan>> {
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion_distributed::{DistributedExec, NetworkBoundaryExt, NetworkCoalesceExec};
    plan.downcast_ref::<DistributedExec>()?;
    let [head] = plan.children()[..] else {
        return None;
    };
    if head
        .downcast_ref::<CoalescePartitionsExec>()?
        .fetch()
        .is_some()
    {
        return None;
    }
    let [boundary] = head.children()[..] else {
        return None;
    };
    boundary.downcast_ref::<NetworkCoalesceExec>()?;
    if boundary.as_network_boundary()?.input_stage().task_count() < 2 {
        return None;
    }
    let export = Arc::new(ExportTasksExec::new(Arc::clone(boundary), published));
    Arc::clone(plan)
        .replace_children(
            vec![export],
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
        .ok()
}
