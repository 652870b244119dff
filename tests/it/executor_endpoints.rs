//! Results read straight from the executors: with `x-shoal-endpoints: executors` (or the
//! session option `shoal.endpoints`) a query whose head only gathers its final stage answers
//! with one endpoint per task of that stage, located at the task's executor.

use std::collections::HashSet;
use std::time::Duration;

use arrow::array::{Int64Array, RecordBatch};
use arrow::datatypes::Schema;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::{CommandStatementQuery, ProstMessageExt};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightEndpoint, FlightInfo, Ticket,
};
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

use crate::cancellation::cpu_over;
use crate::common::{TestCluster, within};
use crate::flight_sql_metadata::session_options_request;

async fn connect(uri: &str) -> FlightServiceClient<Channel> {
    let address = uri
        .replace("grpc+tcp://", "http://")
        .replace("grpc://", "http://");
    let channel = Channel::from_shared(address)
        .unwrap()
        .connect()
        .await
        .unwrap();
    FlightServiceClient::new(channel)
}

fn query(sql: &str, endpoints: Option<&str>) -> Request<FlightDescriptor> {
    let command = CommandStatementQuery {
        query: sql.to_string(),
        transaction_id: None,
    };
    let mut request = Request::new(FlightDescriptor::new_cmd(command.as_any().encode_to_vec()));
    if let Some(value) = endpoints {
        request
            .metadata_mut()
            .insert("x-shoal-endpoints", value.parse().unwrap());
    }
    request
}

async fn read(endpoint: &FlightEndpoint, coordinator: &str) -> Result<Vec<RecordBatch>, Status> {
    let location = endpoint
        .location
        .first()
        .map_or(coordinator, |l| l.uri.as_str());
    let mut client = connect(location).await;
    let ticket: Ticket = endpoint.ticket.clone().unwrap();
    let stream = client.do_get(ticket).await?.into_inner();
    arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(
        stream.map_err(arrow_flight::error::FlightError::from),
    )
    .try_collect()
    .await
    .map_err(|e| match e {
        arrow_flight::error::FlightError::Tonic(status) => *status,
        other => Status::internal(other.to_string()),
    })
}

/// Every endpoint read in parallel, as ADBC does.
async fn read_all(info: &FlightInfo, coordinator: &str) -> Vec<RecordBatch> {
    let reads = info.endpoint.iter().map(|e| read(e, coordinator));
    futures::future::try_join_all(reads).await.unwrap().concat()
}

fn ids(batches: &[RecordBatch]) -> Vec<i64> {
    let mut ids: Vec<i64> = batches
        .iter()
        .flat_map(|b| {
            b.column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap()
                .values()
                .to_vec()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn executor_endpoints_serve_the_final_stage_from_the_executors() {
    let cluster = TestCluster::start(3).await;
    let sql = cluster.client().await;
    sql.ok("CREATE TABLE events (id BIGINT, label VARCHAR) WITH (distribution = 'id', shards = 6)")
        .await;
    sql.ok("INSERT INTO events SELECT value, concat('e', value) FROM generate_series(1, 30000)")
        .await;
    let coordinator = cluster.url().to_string();
    let mut flight = connect(&coordinator).await;
    within(120, "executor endpoints", async {
        let select = "SELECT id, label FROM events WHERE id % 3 <> 0";
        let single = flight
            .get_flight_info(query(select, None))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(single.endpoint.len(), 1, "one endpoint unless asked");
        let expected = ids(&read_all(&single, &coordinator).await);
        assert_eq!(expected.len(), 20000);

        let info = flight
            .get_flight_info(query(select, Some("executors")))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.endpoint.len(), 3, "one endpoint per final-stage task");
        let locations: HashSet<String> = info
            .endpoint
            .iter()
            .map(|e| e.location[0].uri.clone())
            .collect();
        assert_eq!(locations.len(), 3, "each task on its own executor");
        assert!(
            locations
                .iter()
                .all(|l| l.starts_with("grpc+tcp://127.0.0.1:"))
        );
        assert!(!locations.contains(&coordinator.replace("grpc://", "grpc+tcp://")));
        assert!(info.endpoint.iter().all(|e| e.expiration_time.is_some()));
        let schema = Schema::try_from(info.clone()).unwrap();
        let first = read(&info.endpoint[0], &coordinator).await.unwrap();
        // A ticket is redeemed once.
        let again = read(&info.endpoint[0], &coordinator).await.unwrap_err();
        assert_eq!(again.code(), Code::FailedPrecondition, "{again}");
        let rest =
            futures::future::try_join_all(info.endpoint[1..].iter().map(|e| read(e, &coordinator)))
                .await
                .unwrap();
        let batches = [first, rest.concat()].concat();
        assert!(
            batches
                .iter()
                .all(|b| b.schema().fields() == schema.fields()),
            "every endpoint has the FlightInfo's schema (no view types)"
        );
        assert_eq!(ids(&batches), expected, "the same rows as one endpoint");
        // Once every task was read the query is let go, and its tickets are unknown (the
        // executors report the end of a read just after their stream ends).
        let mut after = read(&info.endpoint[1], &coordinator).await.unwrap_err();
        for _ in 0..50 {
            if after.code() != Code::FailedPrecondition {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            after = read(&info.endpoint[1], &coordinator).await.unwrap_err();
        }
        assert_eq!(after.code(), Code::NotFound, "{after}");

        // A ticket edited to name another coordinator is refused by the executor.
        let mut forged = info.endpoint[2].clone();
        let ticket = forged.ticket.as_mut().unwrap();
        let text = String::from_utf8(ticket.ticket.to_vec()).unwrap();
        let port = coordinator.rsplit(':').next().unwrap();
        ticket.ticket = text
            .replace(&format!(":{port}\""), ":1\"")
            .into_bytes()
            .into();
        let refused = read(&forged, &coordinator).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused}");
        assert!(refused.message().contains("does not know"), "{refused}");

        // The coordinator does not redeem executor tickets.
        let mut at_coordinator = info.endpoint[1].clone();
        at_coordinator.location.clear();
        let refused = read(&at_coordinator, &coordinator).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument);

        // Ordered and limited results, and global aggregates, keep one coordinator endpoint.
        for sql in [
            "SELECT id FROM events ORDER BY id",
            "SELECT id FROM events LIMIT 5",
            "SELECT count(*) FROM events",
        ] {
            let info = flight
                .get_flight_info(query(sql, Some("executors")))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(info.endpoint.len(), 1, "{sql}");
            assert!(info.endpoint[0].location.is_empty(), "{sql}");
        }

        // CancelFlightInfo lets the query go: its unredeemed tickets stop working.
        let info = flight
            .get_flight_info(query(select, Some("executors")))
            .await
            .unwrap()
            .into_inner();
        let cancel = Action::new(
            "CancelFlightInfo",
            CancelFlightInfoRequest::new(info.clone()).encode_to_vec(),
        );
        let result: Vec<_> = flight
            .do_action(cancel)
            .await
            .unwrap()
            .into_inner()
            .try_collect()
            .await
            .unwrap();
        let status = CancelFlightInfoResult::decode(&*result[0].body)
            .unwrap()
            .status;
        assert_eq!(status, CancelStatus::Cancelled as i32);
        let late = read(&info.endpoint[2], &coordinator).await.unwrap_err();
        assert_eq!(late.code(), Code::NotFound, "{late}");

        // A reader that stops early still releases its task; the others read to the end.
        let info = flight
            .get_flight_info(query(select, Some("executors")))
            .await
            .unwrap()
            .into_inner();
        let location = &info.endpoint[0].location[0].uri;
        let partial = connect(location)
            .await
            .do_get(info.endpoint[0].ticket.clone().unwrap())
            .await
            .unwrap()
            .into_inner();
        drop(partial);
        let rest =
            futures::future::try_join_all(info.endpoint[1..].iter().map(|e| read(e, &coordinator)))
                .await
                .unwrap();
        assert!(!rest.concat().is_empty());

        // The session option asks the same for every statement of the session.
        let body = session_options_request("shoal.endpoints", "executors");
        let response = flight
            .do_action(Action::new("SetSessionOptions", body))
            .await
            .unwrap();
        let cookie = response.metadata().get("set-cookie").unwrap().clone();
        let mut request = query(select, None);
        request.metadata_mut().insert("cookie", cookie);
        let info = flight.get_flight_info(request).await.unwrap().into_inner();
        assert_eq!(info.endpoint.len(), 3);
        assert_eq!(ids(&read_all(&info, &coordinator).await), expected);

        // An unknown choice is a clear error.
        let bad = flight
            .get_flight_info(query(select, Some("everywhere")))
            .await
            .unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert!(bad.message().contains("x-shoal-endpoints"), "{bad}");
    })
    .await;
    cluster.shutdown().await;
}

/// A client that drops its streams from the executors stops the query's work there within a
/// second, as one that drops a coordinator stream does (see `cancellation.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_executor_streams_stops_the_work() {
    let cluster = TestCluster::start(3).await;
    let sql = cluster.client().await;
    sql.ok("CREATE TABLE nums (id BIGINT) WITH (distribution = 'id')")
        .await;
    sql.ok("INSERT INTO nums SELECT value FROM generate_series(0, 19999)")
        .await;
    let coordinator = cluster.url().to_string();
    let mut flight = connect(&coordinator).await;
    within(120, "cancelling exported reads", async {
        // Eight trillion triples and no row out: far more than a test's lifetime of work.
        let slow = "SELECT a.id FROM nums a, nums b, nums c WHERE a.id + b.id + c.id < 0";
        let info = flight
            .get_flight_info(query(slow, Some("executors")))
            .await
            .unwrap()
            .into_inner();
        assert!(info.endpoint.len() >= 2, "{:?}", info.endpoint);
        let readers: Vec<_> = info
            .endpoint
            .iter()
            .cloned()
            .map(|endpoint| {
                let coordinator = coordinator.clone();
                tokio::spawn(async move { read(&endpoint, &coordinator).await })
            })
            .collect();
        let busy = cpu_over(Duration::from_secs(2)).await;
        assert!(
            busy > 0.8,
            "the query should keep a core busy, used {busy:.2} s in 2 s"
        );
        assert!(
            readers.iter().all(|r| !r.is_finished()),
            "the query ended by itself"
        );
        for reader in &readers {
            reader.abort(); // drops the streams: the client went away
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let after = cpu_over(Duration::from_secs(2)).await;
        assert!(
            after < 0.3,
            "work went on after the client left: {after:.2} CPU seconds in 2 s"
        );
        assert_eq!(sql.scalar("SELECT count(*) FROM nums").await, "20000");
    })
    .await;
    cluster.shutdown().await;
}
