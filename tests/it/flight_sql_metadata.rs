//! Flight SQL metadata commands a driver asks first: catalogs, schemas, tables (with and without
//! a catalog, with schemas), table types and SqlInfo; and prepared statements.

use arrow::array::RecordBatch;
use arrow_flight::FlightInfo;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables, SqlInfo};
use futures::TryStreamExt;
use tonic::transport::Channel;

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
            vec![vec!["shoal".to_string(), "public".to_string()]]
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
        let names: Vec<String> = rows(&tables).into_iter().map(|r| r[2].clone()).collect();
        assert_eq!(names, vec!["things"]);

        let info = client.get_table_types().await.unwrap();
        assert_eq!(
            rows(&fetch(&mut client, info).await),
            vec![vec!["TABLE".to_string()]]
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
    })
    .await;
    cluster.shutdown().await;
}
