//! The Arrow data a client sends with DoPut (prepared-statement parameters, bulk ingest),
//! decoded as a record batch stream without buffering it.

use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use datafusion::common::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{StreamExt, TryStreamExt};
use tonic::Status;

/// The uploaded batches and their schema; `None` when the client sent no schema (no data).
pub async fn open_upload(
    stream: PeekableFlightDataStream,
) -> Result<Option<(SchemaRef, SendableRecordBatchStream)>, Status> {
    let mut decoded =
        FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));
    // The schema is known once the first message (or the end) has been read.
    let first = decoded
        .try_next()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the uploaded data: {e}")))?;
    let Some(schema) = decoded.schema().map(Arc::clone) else {
        return Ok(None);
    };
    let rest = decoded.map_err(|e| DataFusionError::External(Box::new(e)));
    let batches = futures::stream::iter(first.map(Ok)).chain(rest);
    let stream = RecordBatchStreamAdapter::new(Arc::clone(&schema), batches);
    Ok(Some((schema, Box::pin(stream))))
}
