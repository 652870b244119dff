//! Prepared statements without server state. The handle carries the statement's SQL (with `?`
//! already numbered `$1..$n`) and, once parameters are bound, their rows as Arrow IPC: it works
//! on any coordinator, survives a restart, and closing it frees nothing.

use std::io::Cursor;

use arrow::array::RecordBatch;
use arrow::compute::concat_batches;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow_flight::sql::server::PeekableFlightDataStream;
use bytes::Bytes;
use datafusion::common::ScalarValue;
use futures::TryStreamExt;
use prost::Message;
use tonic::Status;

use super::uploads::open_upload;

/// Marks Shoal's handles, so that a foreign or corrupt one gets a clear error.
const MAGIC: &[u8] = b"shoal.prepared.1:";

#[derive(Clone, PartialEq, Message)]
struct HandleMessage {
    #[prost(string, tag = "1")]
    sql: String,
    /// An Arrow IPC stream of the bound parameter rows; empty when none are bound.
    #[prost(bytes = "vec", tag = "2")]
    parameters: Vec<u8>,
}

#[derive(Debug, Clone)]
pub struct PreparedStatement {
    pub sql: String,
    pub parameters: Option<RecordBatch>,
}

impl PreparedStatement {
    pub fn new(sql: String) -> Self {
        Self {
            sql,
            parameters: None,
        }
    }

    pub fn encode(&self) -> Result<Bytes, Status> {
        let parameters = match &self.parameters {
            None => Vec::new(),
            Some(batch) => {
                let mut writer = StreamWriter::try_new(Vec::new(), &batch.schema())
                    .map_err(|e| Status::internal(e.to_string()))?;
                writer
                    .write(batch)
                    .and_then(|_| writer.into_inner())
                    .map_err(|e| Status::internal(e.to_string()))?
            }
        };
        let message = HandleMessage {
            sql: self.sql.clone(),
            parameters,
        };
        let mut bytes = MAGIC.to_vec();
        message
            .encode(&mut bytes)
            .map_err(|e| Status::internal(e.to_string()))?;
        Ok(bytes.into())
    }

    pub fn decode(handle: &[u8]) -> Result<Self, Status> {
        let malformed = || Status::invalid_argument("malformed prepared statement handle");
        let body = handle.strip_prefix(MAGIC).ok_or_else(malformed)?;
        let message = HandleMessage::decode(body).map_err(|_| malformed())?;
        let parameters = if message.parameters.is_empty() {
            None
        } else {
            let reader = StreamReader::try_new(Cursor::new(message.parameters), None)
                .map_err(|_| malformed())?;
            let schema = reader.schema();
            let batches = reader
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| malformed())?;
            Some(concat_batches(&schema, &batches).map_err(|_| malformed())?)
        };
        Ok(Self {
            sql: message.sql,
            parameters,
        })
    }
}

/// The parameter rows a client sends with DoPut, as one batch; `None` when it sends no rows.
pub async fn read_parameters(
    stream: PeekableFlightDataStream,
) -> Result<Option<RecordBatch>, Status> {
    let Some((schema, rows)) = open_upload(stream).await? else {
        return Ok(None);
    };
    let batches: Vec<RecordBatch> = rows
        .try_collect()
        .await
        .map_err(|e| Status::invalid_argument(format!("cannot read the parameters: {e}")))?;
    if batches.iter().all(|b| b.num_rows() == 0) {
        return Ok(None);
    }
    Ok(Some(concat_batches(&schema, &batches).map_err(|e| {
        Status::invalid_argument(format!("cannot read the parameters: {e}"))
    })?))
}

/// The values of row `row`, for `$1..$n`.
pub fn row_values(parameters: &RecordBatch, row: usize) -> Result<Vec<ScalarValue>, Status> {
    parameters
        .columns()
        .iter()
        .map(|column| ScalarValue::try_from_array(column, row))
        .collect::<Result<_, _>>()
        .map_err(|e| Status::invalid_argument(format!("cannot read parameter values: {e}")))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};

    #[test]
    fn handle_round_trips_sql_and_parameters() {
        let schema = Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, true),
            Field::new("$2", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![7, 8])),
                Arc::new(StringArray::from(vec![Some("a"), None])),
            ],
        )
        .unwrap();
        let statement = PreparedStatement {
            sql: "SELECT $1, $2".into(),
            parameters: Some(batch.clone()),
        };
        let decoded = PreparedStatement::decode(&statement.encode().unwrap()).unwrap();
        assert_eq!(decoded.sql, "SELECT $1, $2");
        assert_eq!(decoded.parameters.as_ref(), Some(&batch));
        assert_eq!(
            row_values(&batch, 1).unwrap(),
            vec![ScalarValue::Int64(Some(8)), ScalarValue::Utf8(None)]
        );
        let unbound = PreparedStatement::new("SELECT 1".into());
        assert!(
            PreparedStatement::decode(&unbound.encode().unwrap())
                .unwrap()
                .parameters
                .is_none()
        );
    }

    #[test]
    fn foreign_handles_are_refused() {
        let err = PreparedStatement::decode(b"SELECT 1").unwrap_err();
        assert_eq!(err.code(), tonic::Code::InvalidArgument);
        assert_eq!(err.message(), "malformed prepared statement handle");
    }
}
