//! Test helpers: a cluster on 127.0.0.1:0 in a temp dir, and a Flight SQL client that keeps
//! gRPC status codes.

use std::future::Future;
use std::sync::{Arc, Once};
use std::time::Duration;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use arrow_flight::FlightDescriptor;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use futures::TryStreamExt;
use prost::Message;
use shoal::local_cluster::{LocalCluster, LocalClusterOptions};
use tempfile::TempDir;
use tonic::Status;
use tonic::transport::Channel;

/// Every test step has a deadline so that a hang fails instead of stalling CI.
pub async fn within<T>(seconds: u64, what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {seconds} s"))
}

/// Routes the nodes' logs (warnings by default, `SHOAL_LOG` to change) into libtest's
/// captured output, so a failing test shows what its cluster said.
pub fn init_tracing() {
    static INIT: Once = Once::new();
    INIT.call_once(|| {
        let filter = tracing_subscriber::EnvFilter::try_from_env("SHOAL_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_test_writer()
            .with_ansi(false)
            .try_init();
    });
}

pub struct TestCluster {
    pub cluster: Option<LocalCluster>,
    pub dir: TempDir,
}

impl TestCluster {
    /// A coordinator and `executors` executors on 127.0.0.1 port 0.
    pub async fn start(executors: usize) -> Self {
        Self::start_with(LocalClusterOptions::new(executors)).await
    }

    pub async fn start_with(options: LocalClusterOptions) -> Self {
        init_tracing();
        let dir = tempfile::tempdir().expect("temp dir");
        let cluster = within(
            90,
            "cluster start",
            LocalCluster::start(dir.path(), &options),
        )
        .await
        .expect("cluster starts");
        Self {
            cluster: Some(cluster),
            dir,
        }
    }

    pub fn url(&self) -> &str {
        &self.cluster.as_ref().expect("running").url
    }

    pub async fn client(&self) -> Client {
        Client::connect(self.url()).await
    }

    /// The Postgres listener's address.
    pub fn pg_address(&self) -> std::net::SocketAddr {
        self.cluster
            .as_ref()
            .expect("running")
            .pg_address
            .expect("the cluster serves Postgres")
    }

    pub async fn shutdown(mut self) {
        if let Some(cluster) = self.cluster.take() {
            within(30, "cluster shutdown", cluster.shutdown()).await;
        }
    }
}

/// A plain Flight client speaking Flight SQL commands, so tests see the server's status codes.
#[derive(Clone)]
pub struct Client {
    inner: FlightServiceClient<Channel>,
}

impl Client {
    pub async fn connect(url: &str) -> Self {
        let uri = url.replace("grpc://", "http://");
        let channel = within(10, "connect", Channel::from_shared(uri).unwrap().connect())
            .await
            .expect("connects");
        Self {
            inner: FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX),
        }
    }

    /// A client that connects on first use (to a server that may be down), giving up on a
    /// connection attempt after a second.
    pub fn lazy(url: &str) -> Self {
        let channel = Channel::from_shared(url.replace("grpc://", "http://"))
            .expect("valid URL")
            .connect_timeout(Duration::from_secs(1))
            .connect_lazy();
        Self {
            inner: FlightServiceClient::new(channel).max_decoding_message_size(usize::MAX),
        }
    }

    /// Runs one statement through GetFlightInfo(CommandStatementQuery) + DoGet.
    pub async fn query(&self, sql: &str) -> Result<Vec<RecordBatch>, Status> {
        Ok(self.query_with_schema(sql).await?.1)
    }

    /// Like [`Client::query`], with the result schema the server announced (which an empty
    /// result cannot carry in its batches).
    pub async fn query_with_schema(
        &self,
        sql: &str,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        within(300, sql, self.query_inner(sql)).await
    }

    async fn query_inner(&self, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), Status> {
        let mut client = self.inner.clone();
        let info = client.get_flight_info(statement(sql)).await?.into_inner();
        let schema = Arc::new(
            info.clone()
                .try_decode_schema()
                .map_err(|e| Status::internal(format!("undecodable schema: {e}")))?,
        );
        let mut batches = Vec::new();
        for endpoint in info.endpoint {
            let ticket = endpoint
                .ticket
                .ok_or_else(|| Status::internal("endpoint without ticket"))?;
            let stream = client.do_get(ticket).await?.into_inner();
            let decoded =
                FlightRecordBatchStream::new_from_flight_data(stream.map_err(FlightError::from));
            let mut part: Vec<RecordBatch> = decoded.try_collect().await.map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => Status::internal(other.to_string()),
            })?;
            batches.append(&mut part);
        }
        Ok((schema, batches))
    }

    /// Plans `sql` and opens the DoGet stream of its first endpoint, without reading it.
    pub async fn open(
        &self,
        sql: &str,
    ) -> Result<tonic::Streaming<arrow_flight::FlightData>, Status> {
        let mut client = self.inner.clone();
        let info = client.get_flight_info(statement(sql)).await?.into_inner();
        let ticket = info.endpoint[0]
            .ticket
            .clone()
            .ok_or_else(|| Status::internal("endpoint without ticket"))?;
        Ok(client.do_get(ticket).await?.into_inner())
    }

    /// Runs a statement that must succeed.
    pub async fn ok(&self, sql: &str) -> Vec<RecordBatch> {
        self.query(sql)
            .await
            .unwrap_or_else(|s| panic!("{sql}: {:?}: {}", s.code(), s.message()))
    }

    /// The single value of a one-row, one-column result, as text.
    pub async fn scalar(&self, sql: &str) -> String {
        let rows = rows(&self.ok(sql).await);
        assert_eq!(rows.len(), 1, "{sql} returned {rows:?}");
        assert_eq!(rows[0].len(), 1, "{sql} returned {rows:?}");
        rows[0][0].clone()
    }
}

/// The descriptor of a `CommandStatementQuery` for `sql`.
fn statement(sql: &str) -> FlightDescriptor {
    let command = CommandStatementQuery {
        query: sql.to_string(),
        transaction_id: None,
    };
    FlightDescriptor::new_cmd(command.as_any().encode_to_vec())
}

/// Every row as display strings.
pub fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = Vec::new();
    for batch in batches {
        let formatters: Vec<ArrayFormatter> = batch
            .columns()
            .iter()
            .map(|c| ArrayFormatter::try_new(c.as_ref(), &options).expect("formattable"))
            .collect();
        for row in 0..batch.num_rows() {
            out.push(
                formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .collect(),
            );
        }
    }
    out
}

pub fn row_count(batches: &[RecordBatch]) -> usize {
    batches.iter().map(|b| b.num_rows()).sum()
}

impl Client {
    /// The text of `EXPLAIN sql`, all plan rows joined.
    pub async fn explain(&self, sql: &str) -> String {
        let plan = rows(&self.ok(&format!("EXPLAIN {sql}")).await);
        plan.iter()
            .map(|r| r[1].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The shards a `ShardScanExec` line of a plan reads, e.g. `shards=[0,2] of 6` -> 2.
pub fn scanned_shards(scan_line: &str) -> usize {
    let list = scan_line
        .split("shards=[")
        .nth(1)
        .and_then(|r| r.split(']').next())
        .unwrap_or("");
    list.split(',').filter(|s| !s.is_empty()).count()
}
