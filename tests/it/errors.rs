//! Bad input gets one clear line with the right gRPC code, writes nothing, and the cluster
//! keeps serving.

use tonic::Code;

use crate::common::{Client, TestCluster};

async fn expect_error(client: &Client, sql: &str, code: Code, needle: &str) {
    let status = client.query(sql).await.expect_err(sql);
    assert_eq!(status.code(), code, "{sql}: {}", status.message());
    assert!(
        status
            .message()
            .to_lowercase()
            .contains(&needle.to_lowercase()),
        "{sql}: message '{}' does not mention '{needle}'",
        status.message()
    );
    assert!(
        !status.message().contains('\n'),
        "{sql}: message is not one line: {}",
        status.message()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_statements_get_clear_errors_and_change_nothing() {
    let cluster = TestCluster::start(3).await;
    let client = cluster.client().await;
    client
        .ok("CREATE TABLE t (id BIGINT NOT NULL, name VARCHAR) WITH (distribution = 'id', shards = 4, replication = 2)")
        .await;
    client
        .ok("INSERT INTO t VALUES (1, 'one'), (2, 'two'), (3, 'three')")
        .await;

    expect_error(&client, "SELEKT 1", Code::InvalidArgument, "sql").await;
    expect_error(
        &client,
        "SELECT * FROM missing_table",
        Code::NotFound,
        "missing_table",
    )
    .await;
    expect_error(
        &client,
        "SELECT no_such_column FROM t",
        Code::InvalidArgument,
        "no_such_column",
    )
    .await;
    expect_error(&client, "SELECT name + 1 FROM t", Code::InvalidArgument, "").await;
    expect_error(
        &client,
        "CREATE TABLE t (x INT)",
        Code::AlreadyExists,
        "already exists",
    )
    .await;
    expect_error(
        &client,
        "INSERT INTO t VALUES ('abc', 'x')",
        Code::InvalidArgument,
        "cast",
    )
    .await;
    expect_error(
        &client,
        "INSERT INTO t VALUES (1, 'a', 'extra')",
        Code::InvalidArgument,
        "",
    )
    .await;
    expect_error(
        &client,
        "COPY t FROM '/nonexistent/file.parquet'",
        Code::NotFound,
        "does not exist",
    )
    .await;
    let garbage = cluster.dir.path().join("garbage.parquet");
    std::fs::write(&garbage, b"this is not parquet").unwrap();
    expect_error(
        &client,
        &format!("COPY t FROM '{}'", garbage.display()),
        Code::InvalidArgument,
        "cannot read",
    )
    .await;
    expect_error(
        &client,
        "COPY missing_table FROM '/tmp/x.parquet'",
        Code::NotFound,
        "missing_table",
    )
    .await;
    expect_error(
        &client,
        "CREATE TABLE u (a INT) WITH (distribution = 'nope')",
        Code::InvalidArgument,
        "distribution column 'nope'",
    )
    .await;
    expect_error(
        &client,
        "DROP TABLE missing_table",
        Code::NotFound,
        "missing_table",
    )
    .await;

    // Nothing was partially written, and the cluster still serves.
    assert_eq!(client.scalar("SELECT count(*) FROM t").await, "3");
    assert_eq!(
        client.scalar("SELECT name FROM t WHERE id = 2").await,
        "two"
    );
    let tables = client.ok("SHOW TABLES").await;
    assert!(
        !crate::common::rows(&tables)
            .iter()
            .any(|r| r.iter().any(|c| c == "u"))
    );
    cluster.shutdown().await;
}
