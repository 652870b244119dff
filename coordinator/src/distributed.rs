//! Glue to datafusion-distributed: the only module of this crate that names its types.
//!
//! Shoal decides three things for the planner: how many tasks a shard scan wants (one per
//! executor that owns its shards), which shards each task reads (the ones its executor owns),
//! and where each task runs (on that executor).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, exec_err};
use datafusion::execution::SessionStateBuilder;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_distributed::{
    DesiredTaskCountEvent, DesiredTaskCountEventResponse, DistributedExt, DistributedLeafExec,
    RouteTasksEvent, RouteTasksEventResponse, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse,
    SessionStateBuilderExt, WorkerResolver,
};
use shoal_flight::{ShardPartition, ShardScanCodec, ShardScanExec};
use url::Url;

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
) -> Result<SessionStateBuilder> {
    let urls = executor_addresses
        .iter()
        .map(|a| {
            Url::parse(a)
                .map_err(|e| DataFusionError::Internal(format!("bad executor address {a}: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(builder
        .with_distributed_worker_resolver(LiveExecutors { urls })
        .with_distributed_planner()
        .with_distributed_user_codec(ShardScanCodec)
        .with_distributed_desired_task_count_handler(desired_task_count)
        .with_distributed_scale_up_leaf_node_handler(scale_up_shard_scan)
        .with_distributed_route_tasks_handler(route_to_shard_owners))
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
    Some(split_by_owner(scan, ev.task_count).and_then(|variants| {
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

/// Sends each task of a stage with a shard scan to the executor its variant was built for.
fn route_to_shard_owners(ev: RouteTasksEvent) -> Option<Result<RouteTasksEventResponse>> {
    let mut variants: Option<Vec<Option<String>>> = None;
    ev.plan
        .apply(|node| {
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
        })
        .ok()?;
    let variants = variants?;
    if variants.len() != ev.task_count {
        return Some(exec_err!(
            "shard scan has {} variants for {} tasks",
            variants.len(),
            ev.task_count
        ));
    }
    Some(route(ev, variants))
}

fn route(ev: RouteTasksEvent, owners: Vec<Option<String>>) -> Result<RouteTasksEventResponse> {
    use datafusion_distributed::DistributedGetterExt;
    let available = ev
        .task_ctx
        .session_config()
        .get_distributed_worker_resolver()?
        .get_urls()?;
    let mut spare = available.iter().cycle();
    let urls = owners
        .into_iter()
        .map(|owner| match owner.and_then(|o| Url::parse(&o).ok()) {
            Some(url) => Ok(url),
            None => spare
                .next()
                .cloned()
                .ok_or_else(|| DataFusionError::Execution("no executors available".into())),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RouteTasksEventResponse::new(urls))
}

/// Renders a distributed plan with its stages and tasks (for EXPLAIN).
pub fn display_distributed_plan(plan: &Arc<dyn ExecutionPlan>) -> String {
    datafusion_distributed::display_plan_ascii(plan.as_ref(), false)
}

/// The executor and shards of every task of every shard scan, for EXPLAIN.
pub fn describe_scan_tasks(plan: &Arc<dyn ExecutionPlan>) -> Vec<String> {
    let mut lines = Vec::new();
    let _ = plan.apply(|node| {
        if let Some(leaf) = node.downcast_ref::<DistributedLeafExec>()
            && let Some(original) = leaf.original().downcast_ref::<ShardScanExec>()
        {
            for (task, variant) in leaf.variants().iter().enumerate() {
                if let Some(scan) = variant.downcast_ref::<ShardScanExec>() {
                    let shards: Vec<String> = scan
                        .partitions()
                        .iter()
                        .filter(|p| !p.files.is_empty())
                        .map(|p| p.bucket.to_string())
                        .collect();
                    lines.push(format!(
                        "{} task {task}: executor={} shards=[{}]",
                        original.table(),
                        scan.executor().unwrap_or("any"),
                        shards.join(",")
                    ));
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    lines
}
