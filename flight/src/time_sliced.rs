//! `TimeSlicedExec`: a plan node whose stream returns `Pending` once it has been ready for
//! [`SLICE`] without a break, so that the task running it yields at least that often.
//!
//! Operators such as a filter over a cross join, or an aggregate over a join that keeps no
//! rows, loop over their input inside one poll. tokio's cooperative budget counts batches, and
//! 128 expensive batches can be minutes of work, so a task whose query was dropped would go on
//! until it finished: an abort only lands where the task yields. With every node's stream
//! sliced, a dropped query stops within a slice plus one batch's work.
//!
//! The wrapper is invisible (same name, display, properties, children and metrics) so plans
//! keep the shape datafusion-distributed matches metrics by; its own nodes are left unwrapped
//! because it looks them up by type. Executors slice the stages they run, the coordinator the
//! head stage and plans it runs alone.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{ChildrenPropertiesMode, ReplaceChildrenOptions};
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::Stream;

/// The longest a stream stays ready before it yields once.
pub const SLICE: Duration = Duration::from_millis(20);

/// datafusion-distributed's own nodes, which it finds by type and rebuilds.
const DISTRIBUTED_NODES: [&str; 5] = [
    "DistributedExec",
    "BroadcastExec",
    "DistributedLeafExec",
    "ChildrenIsolatorUnionExec",
    "SamplerExec",
];

/// Where a stage ends: below these nodes are other stages' plans, which run elsewhere.
const NETWORK_BOUNDARIES: [&str; 3] = [
    "NetworkCoalesceExec",
    "NetworkShuffleExec",
    "NetworkBroadcastExec",
];

/// `plan` with every node of the stage that runs here wrapped in [`TimeSlicedExec`], except
/// datafusion-distributed's own; other stages' plans (below network boundaries) are left as
/// they are, since they are sent to executors as they are.
pub fn time_slice(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let name = plan.name();
    // A recursive query rebuilds its recursive term on every iteration and wires its work
    // table by identity; it is left as DataFusion built it.
    if NETWORK_BOUNDARIES.contains(&name) || name == "RecursiveQueryExec" {
        return Ok(plan);
    }
    let children = plan
        .children()
        .into_iter()
        .map(|child| time_slice(Arc::clone(child)))
        .collect::<Result<Vec<_>>>()?;
    let plan = if children.is_empty() {
        plan
    } else {
        plan.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Keep),
        )?
    };
    if DISTRIBUTED_NODES.contains(&plan.name()) {
        Ok(plan)
    } else {
        Ok(Arc::new(TimeSlicedExec { inner: plan }))
    }
}

#[derive(Debug)]
pub struct TimeSlicedExec {
    inner: Arc<dyn ExecutionPlan>,
}

impl DisplayAs for TimeSlicedExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for TimeSlicedExec {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn downcast_delegate(&self) -> Option<&dyn ExecutionPlan> {
        Some(self.inner.as_ref())
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        self.inner.children()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }

    fn replace_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
        options: ReplaceChildrenOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let inner = Arc::clone(&self.inner).replace_children(children, options)?;
        Ok(Arc::new(Self { inner }))
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.replace_children(
            children,
            ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute),
        )
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        Ok(Box::pin(TimeSlicedStream {
            inner: self.inner.execute(partition, context)?,
            ready_since: None,
        }))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        self.inner.metrics()
    }
}

struct TimeSlicedStream {
    inner: SendableRecordBatchStream,
    /// When this stream last started answering without `Pending`.
    ready_since: Option<Instant>,
}

impl Stream for TimeSlicedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let since = *self.ready_since.get_or_insert_with(Instant::now);
        if since.elapsed() >= SLICE {
            self.ready_since = None;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        let poll = self.inner.as_mut().poll_next(cx);
        if poll.is_pending() {
            self.ready_since = None;
        }
        poll
    }
}

impl RecordBatchStream for TimeSlicedStream {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;
    use futures::StreamExt;

    #[tokio::test]
    async fn a_sliced_plan_looks_and_answers_the_same() {
        let ctx = SessionContext::new();
        let sql =
            "SELECT count(*) FROM (VALUES (1), (2), (3)) a(x), (VALUES (1), (2)) b(y) WHERE x > y";
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let sliced = time_slice(Arc::clone(&plan)).unwrap();
        assert_eq!(
            displayable(plan.as_ref()).indent(true).to_string(),
            displayable(sliced.as_ref()).indent(true).to_string()
        );
        let batches = datafusion::physical_plan::collect(sliced, ctx.task_ctx())
            .await
            .unwrap();
        assert_eq!(
            batches[0].column(0).as_ref(),
            &arrow::array::Int64Array::from(vec![3]) as &dyn arrow::array::Array
        );
    }

    #[tokio::test]
    async fn a_busy_stream_yields_after_a_slice() {
        let schema = Arc::new(arrow::datatypes::Schema::empty());
        let endless = futures::stream::repeat_with({
            let schema = Arc::clone(&schema);
            move || {
                std::thread::sleep(Duration::from_millis(5));
                Ok(RecordBatch::new_empty(Arc::clone(&schema)))
            }
        });
        let mut stream = TimeSlicedStream {
            inner: Box::pin(
                datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(schema, endless),
            ),
            ready_since: None,
        };
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        let started = Instant::now();
        let mut ready = 0;
        while Pin::new(&mut stream).poll_next(&mut cx).is_ready() {
            ready += 1;
        }
        assert!(ready >= 3, "{ready}");
        assert!(started.elapsed() < SLICE * 3);
        assert!(stream.next().await.is_some(), "it goes on after yielding");
    }
}
