//! The executor's Flight service: shard writes (`DoPut`), shard scans and clients' reads of
//! exported final-stage tasks (`DoGet`), and control actions (`DoAction`). Everything else is
//! refused.

use std::pin::Pin;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow_flight::decode::{DecodedPayload, FlightDataDecoder};
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::{
    Action, ActionType, Criteria, Empty, FlightData, FlightDescriptor, FlightInfo,
    HandshakeRequest, HandshakeResponse, PollInfo, PutResult, SchemaResult, Ticket,
};
use datafusion::execution::TaskContext;
use futures::{Stream, StreamExt, TryStreamExt};
use shoal_flight::arrow_codec::decode_schema;
use shoal_flight::datafusion_to_status;
use shoal_flight::executor_client::{self, encode_batches};
use shoal_flight::rpc::{
    self, DeleteFilesRequest, ExportTaskRequest, ExportTicket, ExportedTask, ScanShardRequest,
    WriteShardRequest,
};
use shoal_flight::scan_predicate::decode_predicate;
use shoal_flight::shard_reader::read_local;
use shoal_flight::wire_types::{cast_batch, plain_schema};
use tonic::{Request, Response, Status, Streaming};
use tracing::{debug, warn};

use crate::heartbeat::KnownCoordinators;
use crate::shard_store::ShardStore;
use crate::worker::StageWorker;

type BoxStream<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

#[derive(Clone)]
pub struct ExecutorFlightService {
    store: Arc<ShardStore>,
    worker: StageWorker,
    coordinators: KnownCoordinators,
}

impl ExecutorFlightService {
    pub fn new(
        store: Arc<ShardStore>,
        worker: StageWorker,
        coordinators: KnownCoordinators,
    ) -> Self {
        Self {
            store,
            worker,
            coordinators,
        }
    }

    fn scan_shards(&self, scan: ScanShardRequest) -> Result<BoxStream<FlightData>, Status> {
        let table_schema = decode_schema(&scan.schema_ipc).map_err(|e| datafusion_to_status(&e))?;
        let predicate = scan
            .predicate
            .as_deref()
            .and_then(|bytes| decode_predicate(bytes, &table_schema, &TaskContext::default()));
        let stream = read_local(
            self.store.data_dir(),
            scan.paths,
            table_schema,
            scan.projection,
            predicate,
        )
        .map_err(|e| datafusion_to_status(&e))?;
        let schema = plain_schema(&stream.schema());
        Ok(Box::pin(encode_batches(schema, stream)))
    }

    /// A client reads one task of a query's final stage: the coordinator holding the query
    /// must agree (once per ticket, before it expires) and says what to read, and hears when
    /// the reading ends.
    async fn read_exported_task(
        &self,
        ticket: ExportTicket,
    ) -> Result<BoxStream<FlightData>, Status> {
        // The ticket is the client's: only a coordinator of this cluster is asked.
        if !self.coordinators.contains(&ticket.coordinator) {
            return Err(Status::invalid_argument(
                "the ticket names a coordinator this executor does not know",
            ));
        }
        let request = ExportTaskRequest {
            export_id: ticket.export_id.clone(),
            task: ticket.task,
        };
        let task: ExportedTask =
            executor_client::action(&ticket.coordinator, rpc::ACTION_REDEEM_EXPORT, &request)
                .await?;
        let report = ReadReport {
            coordinator: ticket.coordinator.clone(),
            request: Some(request),
        };
        let rows = self
            .worker
            .read_task(&task)
            .await
            .map_err(|e| datafusion_to_status(&e))?;
        debug!(export_id = %ticket.export_id, task = ticket.task, "serving an exported task");
        let schema = plain_schema(&rows.schema());
        let target = Arc::clone(&schema);
        let rows = rows.map(move |batch| batch.and_then(|b| cast_batch(&b, &target)));
        Ok(Box::pin(encode_batches(schema, rows).map(move |item| {
            let _reported_when_dropped = &report;
            item
        })))
    }
}

/// Tells the coordinator that an exported task's reading ended, when the stream serving it
/// is dropped (finished, failed, or abandoned by the client).
struct ReadReport {
    coordinator: String,
    request: Option<ExportTaskRequest>,
}

impl Drop for ReadReport {
    fn drop(&mut self) {
        let (Some(request), Ok(runtime)) =
            (self.request.take(), tokio::runtime::Handle::try_current())
        else {
            return;
        };
        let coordinator = std::mem::take(&mut self.coordinator);
        runtime.spawn(async move {
            let reported = executor_client::action::<_, serde_json::Value>(
                &coordinator,
                rpc::ACTION_EXPORT_READ,
                &request,
            )
            .await;
            if let Err(status) = reported {
                // The coordinator lets the query go after its read limit anyway.
                warn!(%coordinator, error = %status, "could not report an exported task as read");
            }
        });
    }
}

#[tonic::async_trait]
impl FlightService for ExecutorFlightService {
    type HandshakeStream = BoxStream<HandshakeResponse>;
    type ListFlightsStream = BoxStream<FlightInfo>;
    type DoGetStream = BoxStream<FlightData>;
    type DoPutStream = BoxStream<PutResult>;
    type DoExchangeStream = BoxStream<FlightData>;
    type DoActionStream = BoxStream<arrow_flight::Result>;
    type ListActionsStream = BoxStream<ActionType>;

    async fn handshake(
        &self,
        _request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<Response<Self::HandshakeStream>, Status> {
        Err(Status::unimplemented("executors take no client sessions"))
    }

    async fn list_flights(
        &self,
        _request: Request<Criteria>,
    ) -> Result<Response<Self::ListFlightsStream>, Status> {
        Err(Status::unimplemented(
            "list_flights is not served by executors",
        ))
    }

    async fn get_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        Err(Status::unimplemented(
            "query a coordinator, not an executor",
        ))
    }

    async fn poll_flight_info(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<PollInfo>, Status> {
        Err(Status::unimplemented(
            "query a coordinator, not an executor",
        ))
    }

    async fn get_schema(
        &self,
        _request: Request<FlightDescriptor>,
    ) -> Result<Response<SchemaResult>, Status> {
        Err(Status::unimplemented(
            "query a coordinator, not an executor",
        ))
    }

    async fn do_get(
        &self,
        request: Request<Ticket>,
    ) -> Result<Response<Self::DoGetStream>, Status> {
        let ticket = request.into_inner().ticket;
        if let Some(scan) = rpc::decode::<ScanShardRequest>(rpc::SCAN_TICKET_PREFIX, &ticket) {
            return Ok(Response::new(self.scan_shards(scan?)?));
        }
        if let Some(export) = rpc::decode::<ExportTicket>(rpc::EXPORT_TICKET_PREFIX, &ticket) {
            return Ok(Response::new(self.read_exported_task(export?).await?));
        }
        Err(Status::invalid_argument("unknown ticket"))
    }

    async fn do_put(
        &self,
        request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoPutStream>, Status> {
        let mut decoder = FlightDataDecoder::new(request.into_inner().map_err(FlightError::from));
        let mut write: Option<WriteShardRequest> = None;
        let mut batches: Vec<RecordBatch> = Vec::new();
        while let Some(message) = decoder.next().await {
            let message = message.map_err(flight_to_status)?;
            if write.is_none()
                && let Some(descriptor) = &message.inner.flight_descriptor
            {
                write = Some(
                    rpc::decode(rpc::WRITE_DESCRIPTOR_PREFIX, &descriptor.cmd)
                        .ok_or_else(|| Status::invalid_argument("unknown DoPut command"))??,
                );
            }
            if let DecodedPayload::RecordBatch(batch) = message.payload {
                batches.push(batch);
            }
        }
        let write = write.ok_or_else(|| Status::invalid_argument("DoPut without a descriptor"))?;
        let schema = decode_schema(&write.schema_ipc).map_err(|e| datafusion_to_status(&e))?;
        let store = Arc::clone(&self.store);
        let response =
            tokio::task::spawn_blocking(move || store.write(&write.path, &schema, &batches))
                .await
                .map_err(|e| Status::internal(format!("shard writer panicked: {e}")))?
                .map_err(|e| datafusion_to_status(&e))?;
        let metadata = serde_json::to_vec(&response).expect("serializable");
        let result = PutResult {
            app_metadata: metadata.into(),
        };
        Ok(Response::new(Box::pin(futures::stream::once(async {
            Ok(result)
        }))))
    }

    async fn do_exchange(
        &self,
        _request: Request<Streaming<FlightData>>,
    ) -> Result<Response<Self::DoExchangeStream>, Status> {
        Err(Status::unimplemented(
            "do_exchange is not served by executors",
        ))
    }

    async fn do_action(
        &self,
        request: Request<Action>,
    ) -> Result<Response<Self::DoActionStream>, Status> {
        let action = request.into_inner();
        match action.r#type.as_str() {
            rpc::ACTION_DELETE_FILES => {
                let req: DeleteFilesRequest = serde_json::from_slice(&action.body)
                    .map_err(|e| Status::invalid_argument(format!("bad delete request: {e}")))?;
                let store = Arc::clone(&self.store);
                tokio::task::spawn_blocking(move || store.delete(&req.paths))
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?
                    .map_err(|e| datafusion_to_status(&e))?;
                let body = arrow_flight::Result {
                    body: b"{}".to_vec().into(),
                };
                Ok(Response::new(Box::pin(futures::stream::once(async {
                    Ok(body)
                }))))
            }
            other => Err(Status::invalid_argument(format!(
                "unknown action '{other}'"
            ))),
        }
    }

    async fn list_actions(
        &self,
        _request: Request<Empty>,
    ) -> Result<Response<Self::ListActionsStream>, Status> {
        let actions = vec![Ok(ActionType {
            r#type: rpc::ACTION_DELETE_FILES.into(),
            description: "delete shard files".into(),
        })];
        Ok(Response::new(Box::pin(futures::stream::iter(actions))))
    }
}

fn flight_to_status(err: FlightError) -> Status {
    match err {
        FlightError::Tonic(status) => *status,
        other => Status::invalid_argument(other.to_string()),
    }
}
