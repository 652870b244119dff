//! Calls from coordinators (and from `ShardScanExec`) to executors' Flight services.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::{Action, FlightDescriptor, Ticket};
use bytes::Bytes;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Stream, StreamExt, TryStreamExt};
use serde::{Serialize, de::DeserializeOwned};
use tonic::Status;
use tonic::transport::{Channel, Endpoint};

use crate::error::status_to_datafusion;
use crate::rpc::{self, ScanShardRequest, WriteShardRequest, WriteShardResponse};

/// Deadline for control RPCs (register, heartbeat, delete).
pub const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline for writing one shard file (up to a million rows) on one executor.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(300);
/// Deadline for an executor to start answering a scan; the stream itself is paced by its reader.
pub const SCAN_START_TIMEOUT: Duration = Duration::from_secs(30);

static CHANNELS: OnceLock<Mutex<HashMap<String, Channel>>> = OnceLock::new();

/// A cached, lazily connected channel per address: tonic channels multiplex and reconnect.
pub fn channel(address: &str) -> Result<Channel, Status> {
    let mut channels = CHANNELS
        .get_or_init(Default::default)
        .lock()
        .expect("not poisoned");
    if let Some(channel) = channels.get(address) {
        return Ok(channel.clone());
    }
    let endpoint = Endpoint::from_shared(address.to_string())
        .map_err(|e| Status::invalid_argument(format!("bad address {address}: {e}")))?
        .connect_timeout(Duration::from_secs(3))
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(10))
        .keep_alive_timeout(Duration::from_secs(10));
    let channel = endpoint.connect_lazy();
    channels.insert(address.to_string(), channel.clone());
    Ok(channel)
}

/// Drops the cached channel to `address`, so the next call dials a new connection (after the
/// old one broke, e.g. because the executor restarted on the same address).
fn forget(address: &str) {
    if let Some(channels) = CHANNELS.get() {
        channels.lock().expect("not poisoned").remove(address);
    }
}

/// The call failed in the transport, before the executor handled it.
fn is_transport_failure(status: &Status) -> bool {
    let message = status.message();
    status.code() == tonic::Code::Unavailable
        || (status.code() == tonic::Code::Unknown
            && (message.contains("transport error") || message.contains("not ready")))
}

fn client(address: &str) -> Result<FlightServiceClient<Channel>, Status> {
    Ok(FlightServiceClient::new(channel(address)?)
        .max_decoding_message_size(usize::MAX)
        .max_encoding_message_size(usize::MAX))
}

/// Runs a JSON action with a deadline and decodes its single JSON result.
pub async fn action<Req: Serialize, Resp: DeserializeOwned>(
    address: &str,
    kind: &str,
    request: &Req,
) -> Result<Resp, Status> {
    action_with_timeout(address, kind, request, CONTROL_TIMEOUT).await
}

/// [`action`] with its own deadline, for actions that take long (membership changes).
pub async fn action_with_timeout<Req: Serialize, Resp: DeserializeOwned>(
    address: &str,
    kind: &str,
    request: &Req,
    timeout: std::time::Duration,
) -> Result<Resp, Status> {
    authorized_action(address, kind, request, timeout, None).await
}

/// [`action_with_timeout`] carrying an `authorization` header (an admin's credentials).
pub async fn authorized_action<Req: Serialize, Resp: DeserializeOwned>(
    address: &str,
    kind: &str,
    request: &Req,
    timeout: std::time::Duration,
    authorization: Option<&str>,
) -> Result<Resp, Status> {
    let mut client = client(address)?;
    let body = serde_json::to_vec(request).expect("RPC messages always serialize");
    let mut call_request = tonic::Request::new(Action::new(kind, body));
    if let Some(value) = authorization {
        let value = value
            .parse()
            .map_err(|_| Status::invalid_argument("credentials are not a valid header"))?;
        call_request.metadata_mut().insert("authorization", value);
    }
    let call = async {
        let mut results = client.do_action(call_request).await?.into_inner();
        let result = results
            .message()
            .await?
            .ok_or_else(|| Status::internal(format!("{kind}: empty response")))?;
        serde_json::from_slice(&result.body)
            .map_err(|e| Status::internal(format!("{kind}: malformed response: {e}")))
    };
    tokio::time::timeout(timeout, call)
        .await
        .map_err(|_| Status::deadline_exceeded(format!("{kind} to {address} timed out")))?
        .inspect_err(|status| forget_if_broken(address, status))
}

/// A channel whose transport failed can stay failed ("Service was not ready") even after a
/// server listens on its address again (a restarted node, or a port reused by a new one), so
/// callers that retry get a fresh dial instead of the same error forever.
fn forget_if_broken(address: &str, status: &Status) {
    if is_transport_failure(status) {
        forget(address);
    }
}

/// Streams `batches` to the executor at `address`, which writes them as one durable Parquet file.
/// A broken connection is redialled once: writing the same file again is harmless (it is
/// written aside and renamed into place).
pub async fn write_shard(
    address: &str,
    request: &WriteShardRequest,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<WriteShardResponse, Status> {
    match write_shard_once(address, request, Arc::clone(&schema), batches.clone()).await {
        Err(status) if is_transport_failure(&status) => {
            forget(address);
            write_shard_once(address, request, schema, batches).await
        }
        result => result,
    }
}

async fn write_shard_once(
    address: &str,
    request: &WriteShardRequest,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
) -> Result<WriteShardResponse, Status> {
    let mut client = client(address)?;
    let descriptor = FlightDescriptor::new_cmd(rpc::encode(rpc::WRITE_DESCRIPTOR_PREFIX, request));
    let stream = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .with_flight_descriptor(Some(descriptor))
        .build(futures::stream::iter(batches.into_iter().map(Ok)))
        .map(|r| r.expect("encoding in-memory batches does not fail"));
    let call = async {
        let mut results = client.do_put(stream).await?.into_inner();
        let result = results
            .message()
            .await?
            .ok_or_else(|| Status::internal("write_shard: empty response"))?;
        serde_json::from_slice(&result.app_metadata)
            .map_err(|e| Status::internal(format!("write_shard: malformed response: {e}")))
    };
    tokio::time::timeout(WRITE_TIMEOUT, call)
        .await
        .map_err(|_| {
            Status::deadline_exceeded(format!("writing {} on {address} timed out", request.path))
        })?
}

/// Scans shard files on the executor at `address` and streams the batches back.
pub async fn scan_shard(
    address: &str,
    request: &ScanShardRequest,
    schema: SchemaRef,
) -> Result<SendableRecordBatchStream, Status> {
    let mut client = client(address)?;
    let ticket = Ticket::new(Bytes::from(rpc::encode(rpc::SCAN_TICKET_PREFIX, request)));
    let response = tokio::time::timeout(SCAN_START_TIMEOUT, client.do_get(ticket))
        .await
        .map_err(|_| Status::deadline_exceeded(format!("scan on {address} did not start in time")))?
        .inspect_err(|status| forget_if_broken(address, status))?
        .into_inner();
    let batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        response.map_err(FlightError::from),
    )
    .map_err(|e| match e {
        FlightError::Tonic(status) => status_to_datafusion(*status),
        other => datafusion::error::DataFusionError::External(Box::new(other)),
    });
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
}

/// Asks the executor at `address` to delete files (garbage collection after DROP or a failed write).
pub async fn delete_files(address: &str, paths: Vec<String>) -> Result<(), Status> {
    let _: serde_json::Value = action(
        address,
        rpc::ACTION_DELETE_FILES,
        &rpc::DeleteFilesRequest { paths },
    )
    .await?;
    Ok(())
}

/// Encodes a batch stream as Flight data, mapping errors to statuses (used by servers).
pub fn encode_batches(
    schema: SchemaRef,
    batches: impl Stream<Item = Result<RecordBatch>> + Send + 'static,
) -> impl Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static {
    FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches.map_err(|e| FlightError::ExternalError(Box::new(e))))
        .map_err(|e| match e {
            FlightError::ExternalError(inner) => {
                match inner.downcast::<datafusion::error::DataFusionError>() {
                    Ok(df) => crate::error::datafusion_to_status(&df),
                    Err(other) => Status::internal(other.to_string()),
                }
            }
            FlightError::Tonic(status) => *status,
            other => Status::internal(other.to_string()),
        })
}
