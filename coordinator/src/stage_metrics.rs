//! The per-stage, per-task summary `EXPLAIN ANALYZE` prints under the annotated plan: rows and
//! bytes each task produced, bytes its output crossed the network with, CPU time, spill, and
//! how much it read from local shards versus other executors. The only module besides
//! `distributed` that walks datafusion-distributed's stages.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion_distributed::{
    DISTRIBUTED_DATAFUSION_TASK_ID_LABEL, DistributedExec, NetworkBoundaryExt,
};

/// Totals for one task of one stage.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TaskMetrics {
    pub rows: usize,
    pub output_bytes: usize,
    pub compute_nanos: usize,
    pub spilled_bytes: usize,
    pub spill_count: usize,
    pub local_bytes: usize,
    pub remote_bytes: usize,
}

#[derive(Debug, Default, Clone)]
pub struct StageMetrics {
    /// `head` for the coordinator's stage, else `Stage N`.
    pub name: String,
    pub tasks: BTreeMap<usize, TaskMetrics>,
    /// Bytes the stage's output crossed the network with, as its consumers counted them.
    pub network_bytes: usize,
}

/// Walks a plan that has run and been rewritten with per-task metrics.
pub fn collect(plan: &Arc<dyn ExecutionPlan>) -> Vec<StageMetrics> {
    let root = match plan.downcast_ref::<DistributedExec>() {
        Some(_) => plan
            .children()
            .first()
            .map(|c| Arc::clone(c))
            .unwrap_or_else(|| Arc::clone(plan)),
        None => Arc::clone(plan),
    };
    let mut stages = Vec::new();
    visit_stage("head".into(), &root, &mut stages);
    stages
}

fn visit_stage(name: String, root: &Arc<dyn ExecutionPlan>, out: &mut Vec<StageMetrics>) {
    let index = out.len();
    out.push(StageMetrics {
        name,
        ..Default::default()
    });
    if let Some(metrics) = root.metrics() {
        for (task, value) in per_task(&metrics, "output_rows") {
            out[index].tasks.entry(task).or_default().rows += value;
        }
        for (task, value) in per_task(&metrics, "output_bytes") {
            out[index].tasks.entry(task).or_default().output_bytes += value;
        }
    }
    let mut inputs = Vec::new();
    walk(root, &mut out[index], &mut inputs);
    for (stage_name, plan, network_bytes) in inputs {
        let child = out.len();
        visit_stage(stage_name, &plan, out);
        out[child].network_bytes = network_bytes;
    }
}

/// Picks one of a task's totals.
type TaskField = fn(&mut TaskMetrics) -> &mut usize;

/// Adds the metrics of every node of one stage; collects the stages below its boundaries.
fn walk(
    node: &Arc<dyn ExecutionPlan>,
    stage: &mut StageMetrics,
    inputs: &mut Vec<(String, Arc<dyn ExecutionPlan>, usize)>,
) {
    let metrics = node.metrics().unwrap_or_default();
    let fields: [(&str, TaskField); 5] = [
        ("elapsed_compute", |t| &mut t.compute_nanos),
        ("spilled_bytes", |t| &mut t.spilled_bytes),
        ("spill_count", |t| &mut t.spill_count),
        ("local_bytes", |t| &mut t.local_bytes),
        ("remote_bytes", |t| &mut t.remote_bytes),
    ];
    for (name, field) in fields {
        for (task, value) in per_task(&metrics, name) {
            *field(stage.tasks.entry(task).or_default()) += value;
        }
    }
    if let Some(boundary) = node.as_ref().as_network_boundary() {
        let network_bytes: usize = per_task(&metrics, "bytes_transferred").values().sum();
        let input = boundary.input_stage();
        if let Some(plan) = input.local_plan() {
            inputs.push((
                format!("Stage {}", input.num()),
                Arc::clone(plan),
                network_bytes,
            ));
        }
        return;
    }
    for child in node.children() {
        walk(child, stage, inputs);
    }
}

/// The values of metric `name` summed per task (task 0 when a metric has no task label).
fn per_task(metrics: &MetricsSet, name: &str) -> BTreeMap<usize, usize> {
    let mut totals = BTreeMap::new();
    for metric in metrics.iter() {
        if metric.value().name() != name {
            continue;
        }
        let task = metric
            .labels()
            .iter()
            .find(|l| l.name() == DISTRIBUTED_DATAFUSION_TASK_ID_LABEL)
            .and_then(|l| l.value().parse().ok())
            .unwrap_or(0);
        *totals.entry(task).or_insert(0) += metric.value().as_usize();
    }
    totals
}

/// The summary as an aligned table.
pub fn render(stages: &[StageMetrics]) -> String {
    let mut out = String::from(
        "stage     task        rows     output    network    compute      spilled  local read  remote read\n",
    );
    for stage in stages {
        for (i, (task, m)) in stage.tasks.iter().enumerate() {
            let network = if i == 0 {
                bytes(stage.network_bytes)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{:<9} {:>4} {:>11} {:>10} {:>10} {:>9.1}ms {:>12} {:>11} {:>12}",
                if i == 0 { stage.name.as_str() } else { "" },
                task,
                m.rows,
                bytes(m.output_bytes),
                network,
                m.compute_nanos as f64 / 1e6,
                if m.spill_count > 0 {
                    format!("{} ({}x)", bytes(m.spilled_bytes), m.spill_count)
                } else {
                    "0".into()
                },
                bytes(m.local_bytes),
                bytes(m.remote_bytes),
            );
        }
    }
    out
}

fn bytes(n: usize) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
