//! The datafusion-distributed worker that runs plan stages on this executor. The only module of
//! this crate that names `datafusion_distributed` types.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::error::DataFusionError;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{FunctionRegistry, SessionState};
use datafusion_distributed::{
    DistributedExt, Worker, WorkerPlanRewriteEvent, WorkerPlanRewriteEventResponse,
    WorkerQueryContext, WorkerSessionBuilder,
};
use shoal_flight::single_row_udf::single_row_udf;
use shoal_flight::{LocalShardStore, ShardScanCodec};

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

/// Adds the worker gRPC service, for an executor whose shards live in `store`, to `server`.
/// Every stage shares `runtime`, and so its memory pool and spill directory.
pub fn add_worker_service(
    server: &mut Server,
    store: LocalShardStore,
    runtime: Arc<RuntimeEnv>,
) -> Router {
    let worker = Worker::from_session_builder(ShoalWorkerSession {
        store: Arc::new(store),
    })
    .with_runtime_env(runtime);
    server.add_service(worker.into_worker_server())
}
