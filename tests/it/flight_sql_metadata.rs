//! Flight SQL metadata commands a driver asks first: catalogs, schemas, tables (with and without
//! a catalog, with schemas), table types, SqlInfo, XDBC types and keys; PollFlightInfo, GetSchema,
//! CancelFlightInfo and session options.

use arrow::array::RecordBatch;
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetExportedKeys, CommandGetPrimaryKeys, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandStatementQuery, ProstMessageExt, SqlInfo,
};
use arrow_flight::{
    Action, CancelFlightInfoRequest, CancelFlightInfoResult, CancelStatus, FlightDescriptor,
    FlightInfo,
};
use futures::TryStreamExt;
use prost::Message;
use tonic::transport::Channel;
use tonic::{Code, Request};

use crate::common::{TestCluster, rows, within};

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut out = Vec::new();
    for endpoint in info.endpoint {
        assert!(
            endpoint.location.is_empty(),
            "the coordinator redeems its own tickets"
        );
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        out.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metadata_commands_answer() {
    let cluster = TestCluster::start(1).await;
    let sql = cluster.client().await;
    sql.ok("CREATE TABLE things (id BIGINT NOT NULL, label VARCHAR) WITH (distribution = 'id')")
        .await;
    let channel = Channel::from_shared(cluster.url().replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    within(60, "metadata", async {
        let info = client.get_catalogs().await.unwrap();
        assert_eq!(
            rows(&fetch(&mut client, info).await),
            vec![vec!["shoal".to_string()]]
        );

        let info = client
            .get_db_schemas(CommandGetDbSchemas {
                catalog: None,
                db_schema_filter_pattern: None,
            })
            .await
            .unwrap();
        assert_eq!(
            rows(&fetch(&mut client, info).await),
            vec![
                vec!["shoal".to_string(), "information_schema".to_string()],
                vec!["shoal".to_string(), "public".to_string()]
            ]
        );

        let info = client
            .get_tables(CommandGetTables {
                catalog: None,
                db_schema_filter_pattern: None,
                table_name_filter_pattern: None,
                table_types: vec![],
                include_schema: true,
            })
            .await
            .unwrap();
        let tables = fetch(&mut client, info).await;
        assert_eq!(
            tables[0].schema().fields().len(),
            5,
            "include_schema adds table_schema"
        );
        let public: Vec<String> = rows(&tables)
            .into_iter()
            .filter(|r| r[1] == "public")
            .map(|r| format!("{} {}", r[2], r[3]))
            .collect();
        assert_eq!(public, vec!["things TABLE"]);
        assert!(
            rows(&tables)
                .iter()
                .any(|r| r[1] == "information_schema" && r[2] == "columns" && r[3] == "VIEW"),
            "information_schema views are listed"
        );

        let info = client.get_table_types().await.unwrap();
        assert_eq!(
            rows(&fetch(&mut client, info).await),
            vec![vec!["TABLE".to_string()], vec!["VIEW".to_string()]]
        );

        let info = client
            .get_sql_info(vec![
                SqlInfo::FlightSqlServerName,
                SqlInfo::SqlIdentifierQuoteChar,
            ])
            .await
            .unwrap();
        let info_rows = rows(&fetch(&mut client, info).await);
        assert_eq!(info_rows.len(), 2);
        assert!(
            info_rows.iter().any(|r| r[1].contains("Shoal")),
            "{info_rows:?}"
        );

        // Key commands answer with empty results of the spec's schemas, not errors.
        let info = client
            .get_primary_keys(CommandGetPrimaryKeys {
                catalog: None,
                db_schema: None,
                table: "things".into(),
            })
            .await
            .unwrap();
        let schema = info.clone().try_decode_schema().unwrap();
        assert_eq!(schema.field(5).name(), "key_sequence");
        let keys = fetch(&mut client, info).await;
        assert_eq!(keys.iter().map(|b| b.num_rows()).sum::<usize>(), 0);
        let info = client
            .get_exported_keys(CommandGetExportedKeys {
                catalog: None,
                db_schema: None,
                table: "things".into(),
            })
            .await
            .unwrap();
        assert_eq!(info.clone().try_decode_schema().unwrap().fields().len(), 13);
        let keys = fetch(&mut client, info).await;
        assert_eq!(keys.iter().map(|b| b.num_rows()).sum::<usize>(), 0);

        let info = client
            .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
            .await
            .unwrap();
        let types: Vec<String> = rows(&fetch(&mut client, info).await)
            .into_iter()
            .map(|r| r[0].clone())
            .collect();
        assert!(types.contains(&"BIGINT".to_string()), "{types:?}");
    })
    .await;
    cluster.shutdown().await;
}

/// PollFlightInfo answers complete at once; CancelFlightInfo cancels an unredeemed ticket;
/// session options keep a schema behind the session cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn poll_cancel_and_session_options() {
    let cluster = TestCluster::start(1).await;
    let channel = Channel::from_shared(cluster.url().replace("grpc://", "http://"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut flight = FlightServiceClient::new(channel.clone());
    within(60, "poll, cancel and sessions", async {
        let descriptor = FlightDescriptor::new_cmd(
            CommandStatementQuery {
                query: "SELECT 1 AS one".into(),
                transaction_id: None,
            }
            .as_any()
            .encode_to_vec(),
        );
        let poll = flight
            .poll_flight_info(descriptor.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(poll.progress, Some(1.0));
        assert!(poll.flight_descriptor.is_none(), "the first poll is final");
        let info = poll.info.expect("a complete poll has the info");

        let cancel = Action::new(
            "CancelFlightInfo",
            CancelFlightInfoRequest::new(info.clone()).encode_to_vec(),
        );
        let result = first_result(&mut flight, cancel.clone()).await;
        let status = CancelFlightInfoResult::decode(&*result).unwrap().status;
        assert_eq!(status, CancelStatus::Cancelled as i32);
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let redeemed = flight.do_get(ticket).await;
        let error = match redeemed {
            Ok(response) => response
                .into_inner()
                .try_collect::<Vec<_>>()
                .await
                .unwrap_err(),
            Err(status) => status,
        };
        assert_eq!(error.code(), Code::NotFound, "{error}");
        let again = CancelFlightInfoResult::decode(&*first_result(&mut flight, cancel).await)
            .unwrap()
            .status;
        assert_eq!(again, CancelStatus::NotCancellable as i32);

        let schema = flight.get_schema(descriptor).await.unwrap().into_inner();
        let schema = arrow::datatypes::Schema::try_from(&schema).unwrap();
        assert_eq!(schema.field(0).name(), "one");

        // SetSessionOptions(schema = information_schema): the reply sets a session cookie, and
        // statements carrying it resolve unqualified names in that schema.
        let body = session_options_request("schema", "information_schema");
        let response = flight
            .do_action(Action::new("SetSessionOptions", body))
            .await
            .unwrap();
        let cookie = response
            .metadata()
            .get("set-cookie")
            .expect("a new session sets a cookie")
            .to_str()
            .unwrap()
            .to_string();
        let errors: Vec<_> = response.into_inner().try_collect().await.unwrap();
        assert_eq!(errors[0].body.len(), 0, "no option was refused");
        let mut query = Request::new(FlightDescriptor::new_cmd(
            CommandStatementQuery {
                query: "SELECT count(*) AS n FROM df_settings".into(),
                transaction_id: None,
            }
            .as_any()
            .encode_to_vec(),
        ));
        query
            .metadata_mut()
            .insert("cookie", cookie.parse().unwrap());
        flight
            .get_flight_info(query)
            .await
            .expect("df_settings resolves in the session's schema");
        let without_session = flight
            .get_flight_info(FlightDescriptor::new_cmd(
                CommandStatementQuery {
                    query: "SELECT count(*) AS n FROM df_settings".into(),
                    transaction_id: None,
                }
                .as_any()
                .encode_to_vec(),
            ))
            .await
            .unwrap_err();
        assert_eq!(without_session.code(), Code::NotFound, "{without_session}");

        let refused = session_options_request("catalog", "elsewhere");
        let body = first_result(&mut flight, Action::new("SetSessionOptions", refused)).await;
        assert!(!body.is_empty(), "an unknown catalog is refused per option");
    })
    .await;
    cluster.shutdown().await;
}

async fn first_result(flight: &mut FlightServiceClient<Channel>, action: Action) -> Vec<u8> {
    let results: Vec<_> = flight
        .do_action(action)
        .await
        .unwrap()
        .into_inner()
        .try_collect()
        .await
        .unwrap();
    results[0].body.to_vec()
}

/// SetSessionOptionsRequest{ name: string_value(value) }, encoded by hand from Flight.proto.
pub(crate) fn session_options_request(name: &str, value: &str) -> Vec<u8> {
    fn field(number: u8, payload: &[u8]) -> Vec<u8> {
        let mut out = vec![number << 3 | 2, payload.len() as u8];
        out.extend_from_slice(payload);
        out
    }
    let option_value = field(1, value.as_bytes());
    let entry = [field(1, name.as_bytes()), field(2, &option_value)].concat();
    field(1, &entry)
}
