//! The datafusion-distributed worker that runs plan stages on this executor. The only module of
//! this crate that names `datafusion_distributed` types.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion_distributed::{
    DistributedExt, ExecuteTaskRequest, ProducerHead, TaskKey, Worker, WorkerPlanRewriteEvent,
    WorkerPlanRewriteEventResponse, WorkerQueryContext, WorkerSessionBuilder,
};
use futures::StreamExt;
use shoal_flight::rpc::ExportedTask;
use shoal_flight::single_row_udf::single_row_udf;
use shoal_flight::{LocalShardStore, ShardScanCodec};
use uuid::Uuid;

use shoal_flight::time_sliced::time_slice;

use tonic::transport::Server;
use tonic::transport::server::Router;

/// Gives every stage that runs here the shard-scan codec and this executor's shard store.
#[derive(Clone)]
struct ShoalWorkerSession {
    store: Arc<LocalShardStore>,
}

#[async_trait]
impl WorkerSessionBuilder for ShoalWorkerSession {
    async fn build_session_state(
        &self,
        ctx: WorkerQueryContext,
    ) -> Result<SessionState, DataFusionError> {
        let mut builder = ctx
            .builder
            .with_distributed_user_codec(ShardScanCodec)
            // So that a dropped query stops here within milliseconds (see `time_sliced.rs`).
            .with_distributed_worker_plan_rewrite_handler(|event: WorkerPlanRewriteEvent<'_>| {
                time_slice(event.plan).map(WorkerPlanRewriteEventResponse::new)
            });
        builder
            .config()
            .get_or_insert_default()
            .set_extension(Arc::clone(&self.store));
        let mut state = builder.build();
        // Functions the coordinator's rewrites put into plans.
        state.register_udf(single_row_udf())?;
        Ok(state)
    }
}

/// This executor's datafusion-distributed worker: it runs the stages coordinators send and
/// serves their partitions to other stages, and to clients reading a query's final stage.
#[derive(Clone)]
pub struct StageWorker {
    worker: Worker,
}

impl StageWorker {
    /// A worker for an executor whose shards live in `store`. Every stage shares `runtime`,
    /// and so its memory pool and spill directory.
    pub fn new(store: LocalShardStore, runtime: Arc<RuntimeEnv>) -> Self {
        let worker = Worker::from_session_builder(ShoalWorkerSession {
            store: Arc::new(store),
        })
        .with_runtime_env(runtime);
        Self { worker }
    }

    /// Adds the worker gRPC service to `server`.
    pub fn add_service(&self, server: &mut Server) -> Router {
        server.add_service(self.worker.clone().into_worker_server())
    }

    /// Every partition of one task of a query's final stage, merged into one stream as they
    /// come. The task's plan was sent by the coordinator; dropping the stream stops it.
    pub async fn read_task(&self, task: &ExportedTask) -> Result<SendableRecordBatchStream> {
        let query_id = Uuid::parse_str(&task.query_id)
            .map_err(|e| DataFusionError::Internal(format!("malformed query id: {e}")))?;
        let request = ExecuteTaskRequest {
            task_key: TaskKey {
                query_id,
                stage_id: task.stage,
                task_number: task.task,
            },
            target_partition_start: 0,
            target_partition_end: task.partitions,
            producer_head: ProducerHead::None,
        };
        let (partitions, _task_ctx) = self.worker.execute_task(request).await?;
        let Some(schema) = partitions.first().map(|p| p.schema()) else {
            return Err(DataFusionError::Internal(
                "the task has no partitions".into(),
            ));
        };
        let mut merged = RecordBatchReceiverStreamBuilder::new(schema, partitions.len().max(2));
        for mut partition in partitions {
            let tx = merged.tx();
            merged.spawn(async move {
                while let Some(batch) = partition.next().await {
                    if tx.send(batch).await.is_err() {
                        break; // the reader went away
                    }
                }
                Ok(())
            });
        }
        Ok(merged.build())
    }
}
