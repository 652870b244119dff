//! DDL, writes and reads through Flight SQL: table options, INSERT, CREATE TABLE AS, COPY,
//! DROP, SHOW/DESCRIBE, and EXPLAIN showing shard pruning and the executors that scan.

use crate::common::{TestCluster, row_count, rows, scanned_shards};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ddl_writes_and_reads() {
    let cluster = TestCluster::start(3).await;
    let client = cluster.client().await;

    client
        .ok("CREATE TABLE events (id BIGINT NOT NULL, kind VARCHAR, amount DOUBLE, day DATE) WITH (distribution = 'id', shards = 6, replication = 2)")
        .await;
    let inserted = client
        .scalar("INSERT INTO events VALUES (1, 'a', 1.5, DATE '2024-01-01'), (2, 'b', 2.5, DATE '2024-01-02'), (3, 'a', NULL, NULL)")
        .await;
    assert_eq!(inserted, "3");
    client
        .ok("INSERT INTO events SELECT id + 100, kind, amount * 2, day FROM events")
        .await;
    assert_eq!(client.scalar("SELECT count(*) FROM events").await, "6");
    assert_eq!(
        rows(
            &client
                .ok("SELECT kind, count(*), sum(amount) FROM events GROUP BY kind ORDER BY kind")
                .await
        ),
        vec![vec!["a", "4", "4.5"], vec!["b", "2", "7.5"]]
            .into_iter()
            .map(|r| r.into_iter().map(String::from).collect::<Vec<_>>())
            .collect::<Vec<_>>()
    );

    // CREATE TABLE AS, replicated (no distribution column).
    client
        .ok("CREATE TABLE kinds AS SELECT DISTINCT kind FROM events")
        .await;
    assert_eq!(client.scalar("SELECT count(*) FROM kinds").await, "2");
    // A join of a distributed and a replicated table.
    assert_eq!(
        client
            .scalar("SELECT count(*) FROM events e JOIN kinds k ON e.kind = k.kind")
            .await,
        "6"
    );

    // SHOW TABLES and DESCRIBE.
    let tables = rows(&client.ok("SHOW TABLES").await);
    assert!(tables.iter().any(|r| r.contains(&"events".to_string())));
    let described = rows(&client.ok("DESCRIBE events").await);
    assert_eq!(described.len(), 4);
    assert_eq!(described[0][0], "id");

    // COPY FROM CSV.
    let csv = cluster.dir.path().join("more.csv");
    std::fs::write(
        &csv,
        "id,kind,amount,day\n500,c,9.0,2024-02-01\n501,c,1.0,2024-02-02\n",
    )
    .unwrap();
    assert_eq!(
        client
            .scalar(&format!(
                "COPY events FROM '{}' WITH (FORMAT csv, HEADER true)",
                csv.display()
            ))
            .await,
        "2"
    );
    assert_eq!(
        client
            .scalar("SELECT count(*) FROM events WHERE kind = 'c'")
            .await,
        "2"
    );

    // EXPLAIN: the point lookup scans one of six shards, on an executor.
    let text = client.explain("SELECT * FROM events WHERE id = 500").await;
    assert!(text.contains("ShardScanExec: table=events"), "{text}");
    let scan_line = text.lines().find(|l| l.contains("ShardScanExec")).unwrap();
    assert!(scan_line.contains("of 6"), "{scan_line}");
    assert_eq!(
        scanned_shards(scan_line),
        1,
        "a point lookup on the distribution key reads one shard: {text}"
    );
    // A full scan is split across the executors: tasks with their executor.
    let text = client
        .explain("SELECT kind, count(*) FROM events GROUP BY kind")
        .await;
    assert!(
        text.contains("Stage"),
        "distributed plan has stages: {text}"
    );
    assert!(text.contains("executor=http://127.0.0.1:"), "{text}");

    // DROP TABLE.
    client.ok("DROP TABLE kinds").await;
    assert!(client.query("SELECT * FROM kinds").await.is_err());
    client.ok("DROP TABLE IF EXISTS kinds").await;

    // Large-ish result streams fine.
    client
        .ok("CREATE TABLE numbers (n BIGINT NOT NULL) WITH (distribution = 'n')")
        .await;
    client
        .ok("INSERT INTO numbers SELECT value FROM generate_series(1, 200000)")
        .await;
    let all = client.ok("SELECT n FROM numbers").await;
    assert_eq!(row_count(&all), 200000);
    assert_eq!(
        client.scalar("SELECT sum(n) FROM numbers").await,
        "20000100000"
    );
    cluster.shutdown().await;
}

/// A bucket bigger than one file is written as key-disjoint files, so a lookup on the
/// distribution key opens one file however the rows arrived.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_bucket_of_many_files_splits_by_key() {
    let cluster = TestCluster::start(2).await;
    let client = cluster.client().await;
    client
        .ok("CREATE TABLE scattered (k BIGINT NOT NULL, v BIGINT) WITH (distribution = 'k', shards = 1, replication = 2)")
        .await;
    // Keys arrive as a permutation of 0..2.5M (1000003 is coprime to 2.5M), and the lookup
    // key 7 repeats three times, so the three copies must land in one file.
    client
        .ok("INSERT INTO scattered SELECT (value * 1000003) % 2500000, value FROM generate_series(0, 2499999) UNION ALL SELECT 7, -1 UNION ALL SELECT 7, -2")
        .await;
    assert_eq!(
        client.scalar("SELECT count(*) FROM scattered").await,
        "2500002"
    );
    let full = client.explain("SELECT * FROM scattered").await;
    assert!(full.contains("files=3"), "{full}");
    for key in [0, 7, 1_250_000, 2_499_999] {
        let lookup = client
            .explain(&format!("SELECT v FROM scattered WHERE k = {key}"))
            .await;
        assert!(lookup.contains("files=1,"), "k = {key}: {lookup}");
    }
    assert_eq!(
        client
            .scalar("SELECT count(*) FROM scattered WHERE k = 7")
            .await,
        "3"
    );
    cluster.shutdown().await;
}
