//! `ExportTasksExec`: the head of a query whose final stage clients read straight from the
//! executors (Flight SQL results with several endpoints).
//!
//! It takes the place of the coordinator's `CoalescePartitionsExec` over the final stage's
//! network boundary. Running it sends the stages to the executors as any query does, then,
//! instead of reading the final stage, it publishes where each of its tasks runs and waits,
//! producing no rows, so that the executors keep the query until the coordinator drops it.

use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, internal_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use tokio::sync::oneshot;

use crate::distributed::{FinalStageTasks, final_stage_tasks};

/// Where the final stage's tasks run, sent once the stages are on their executors (or the
/// error that stopped them).
pub type TasksSender = Arc<Mutex<Option<oneshot::Sender<Result<FinalStageTasks>>>>>;

#[derive(Debug)]
pub struct ExportTasksExec {
    /// The final stage's network boundary.
    input: Arc<dyn ExecutionPlan>,
    published: TasksSender,
    properties: Arc<PlanProperties>,
}

impl ExportTasksExec {
    pub fn new(input: Arc<dyn ExecutionPlan>, published: TasksSender) -> Self {
        let properties = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(input.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Final,
            Boundedness::Bounded,
        ));
        Self {
            input,
            published,
            properties,
        }
    }
}

impl DisplayAs for ExportTasksExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "ExportTasksExec")
    }
}

impl ExecutionPlan for ExportTasksExec {
    fn name(&self) -> &str {
        "ExportTasksExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let (Some(input), true) = (children.pop(), children.is_empty()) else {
            return internal_err!("ExportTasksExec takes one child");
        };
        Ok(Arc::new(Self::new(input, Arc::clone(&self.published))))
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return internal_err!("ExportTasksExec has one partition, not {partition}");
        }
        let tasks = final_stage_tasks(&self.input);
        if let Some(sender) = self.published.lock().expect("not poisoned").take() {
            // The receiver is gone only when the statement was abandoned already.
            let _ = sender.send(tasks);
        }
        // Rows go from the executors to the clients; this stream only keeps the query open.
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema(),
            futures::stream::pending(),
        )))
    }
}
