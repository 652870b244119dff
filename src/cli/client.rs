//! The Flight SQL connection: connect to a coordinator, run a statement, stream its batches.

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use arrow_flight::Ticket;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::StreamExt;
use tonic::transport::{Channel, Endpoint};

use super::errors;

/// How long we wait for the TCP connection (and HTTP/2 setup) before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed connection attempt; displays as `cannot connect to <url>: <reason>`.
#[derive(Debug)]
pub struct ConnectError {
    pub url: String,
    pub reason: String,
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot connect to {}: {}", self.url, self.reason)
    }
}

impl std::error::Error for ConnectError {}

/// Maps the URL a user types to the `http://` URI tonic dials. Flight URIs say `grpc://` (or
/// `grpc+tcp://`), which is plaintext HTTP/2; a bare `host:port` is accepted for convenience.
pub fn endpoint_uri(url: &str) -> Result<String, String> {
    let url = url.trim();
    for plaintext in ["grpc://", "grpc+tcp://", "http://"] {
        if let Some(rest) = url.strip_prefix(plaintext) {
            return Ok(format!("http://{rest}"));
        }
    }
    if url.starts_with("https://") || url.starts_with("grpc+tls://") || url.starts_with("grpcs://")
    {
        return Err("TLS endpoints are not supported by this client yet".to_string());
    }
    if url.contains("://") {
        return Err("unsupported URL scheme (use grpc:// or http://)".to_string());
    }
    if url.is_empty() {
        return Err("empty URL".to_string());
    }
    Ok(format!("http://{url}"))
}

/// A user name and password, sent on Handshake to coordinators that require one.
#[derive(Clone, Debug)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// A connected Flight SQL client.
#[derive(Clone)]
pub struct SqlClient {
    inner: FlightSqlServiceClient<Channel>,
}

impl SqlClient {
    /// Connects eagerly so that a wrong address (or password) is reported before the first
    /// prompt.
    pub async fn connect(
        url: &str,
        credentials: Option<&Credentials>,
    ) -> Result<Self, ConnectError> {
        let failure = |reason: String| ConnectError {
            url: url.to_string(),
            reason,
        };
        let uri = endpoint_uri(url).map_err(failure)?;
        let endpoint = Endpoint::from_shared(uri)
            .map_err(|e| failure(format!("invalid URL: {}", errors::error_message(&e))))?
            .connect_timeout(CONNECT_TIMEOUT);
        let channel = match tokio::time::timeout(CONNECT_TIMEOUT, endpoint.connect()).await {
            Ok(Ok(channel)) => channel,
            Ok(Err(e)) => return Err(failure(transport_reason(&e))),
            Err(_) => {
                return Err(failure(format!(
                    "timed out after {} s",
                    CONNECT_TIMEOUT.as_secs()
                )));
            }
        };
        let mut inner = FlightSqlServiceClient::new(channel);
        if let Some(credentials) = credentials {
            // The client keeps the bearer token Handshake answers with for later calls.
            inner
                .handshake(&credentials.user, &credentials.password)
                .await
                .map_err(|e| failure(errors::error_message(&e)))?;
        }
        Ok(Self { inner })
    }

    /// Sends `sql` as a Flight SQL `CommandStatementQuery` (queries, DDL and DML alike) and
    /// returns a stream over the batches of all its endpoints.
    pub async fn execute(&mut self, sql: &str) -> Result<ResultStream, FlightError> {
        let info = self.inner.execute(sql.to_string(), None).await?;
        // Servers may leave the schema empty; then we learn it from the data stream instead.
        let schema = if info.schema.is_empty() {
            None
        } else {
            info.clone().try_decode_schema().ok().map(Arc::new)
        };
        // Every endpoint is fetched over this same connection: the coordinator we talk to is
        // the front door and its advertised locations may not be reachable from the client.
        let tickets = info
            .endpoint
            .into_iter()
            .filter_map(|endpoint| endpoint.ticket)
            .collect();
        Ok(ResultStream {
            client: self.inner.clone(),
            tickets,
            current: None,
            schema,
        })
    }
}

/// `transport error` alone says nothing; the reason (refused, DNS, ...) is in the source chain.
fn transport_reason(err: &tonic::transport::Error) -> String {
    use std::error::Error;
    match err.source() {
        Some(source) => errors::clean_message(&errors::describe_chain(
            &source.to_string(),
            source.source(),
        )),
        None => errors::clean_message(&err.to_string()),
    }
}

/// The batches of one statement, endpoint after endpoint, fetched lazily.
pub struct ResultStream {
    client: FlightSqlServiceClient<Channel>,
    tickets: VecDeque<Ticket>,
    current: Option<FlightRecordBatchStream>,
    schema: Option<SchemaRef>,
}

impl ResultStream {
    /// The next batch, or `None` when every endpoint is exhausted.
    pub async fn next_batch(&mut self) -> Result<Option<RecordBatch>, FlightError> {
        loop {
            if let Some(stream) = self.current.as_mut() {
                match stream.next().await {
                    Some(Ok(batch)) => {
                        if self.schema.is_none() {
                            self.schema = Some(batch.schema());
                        }
                        return Ok(Some(batch));
                    }
                    Some(Err(e)) => return Err(e),
                    None => {
                        if self.schema.is_none() {
                            self.schema = stream.schema().cloned();
                        }
                        self.current = None;
                    }
                }
            }
            let Some(ticket) = self.tickets.pop_front() else {
                return Ok(None);
            };
            self.current = Some(self.client.do_get(ticket).await?);
        }
    }

    /// The result schema, if the server sent one (known after the first batch at the latest).
    pub fn schema(&self) -> Option<SchemaRef> {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_and_http_schemes_map_to_http() {
        assert_eq!(
            endpoint_uri("grpc://127.0.0.1:50051").as_deref(),
            Ok("http://127.0.0.1:50051")
        );
        assert_eq!(endpoint_uri("grpc+tcp://h:1").as_deref(), Ok("http://h:1"));
        assert_eq!(endpoint_uri(" http://h:1 ").as_deref(), Ok("http://h:1"));
        assert_eq!(
            endpoint_uri("localhost:50051").as_deref(),
            Ok("http://localhost:50051")
        );
    }

    #[test]
    fn tls_and_unknown_schemes_are_rejected_with_a_reason() {
        assert!(endpoint_uri("https://h:1").is_err());
        assert!(endpoint_uri("grpc+tls://h:1").is_err());
        assert!(endpoint_uri("ftp://h:1").is_err());
        assert!(endpoint_uri("").is_err());
    }

    #[tokio::test]
    async fn refused_connection_names_the_url() {
        // Port 1 on loopback is essentially never listening.
        let err = SqlClient::connect("grpc://127.0.0.1:1", None)
            .await
            .err()
            .map(|e| e.to_string());
        let text = err.unwrap_or_default();
        assert!(
            text.starts_with("cannot connect to grpc://127.0.0.1:1: "),
            "{text}"
        );
    }
}
