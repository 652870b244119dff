//! Distributed plans: co-located tables join and aggregate on their key without a shuffle, and
//! catalog statistics put the small side of a join on the broadcast build side.

use crate::common::{Client, TestCluster, rows};
use crate::plan_text::{stage_of, without_addresses};

async fn load_orders_and_lines(client: &Client) {
    client
        .ok("CREATE TABLE orders (o_key BIGINT, o_cust BIGINT, o_total BIGINT) WITH (distribution = 'o_key', shards = 3)")
        .await;
    client
        .ok("CREATE TABLE lines (l_key BIGINT, l_qty BIGINT) WITH (distribution = 'l_key', shards = 3)")
        .await;
    client
        .ok("INSERT INTO orders SELECT value, value % 50, value * 10 FROM generate_series(1, 3000)")
        .await;
    client
        .ok("INSERT INTO lines SELECT value % 3000 + 1, value % 7 FROM generate_series(1, 12000)")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn co_located_join_and_aggregate_need_no_shuffle() {
    let cluster = TestCluster::start(3).await;
    let client = cluster.client().await;
    load_orders_and_lines(&client).await;

    let sql = "SELECT o_key, sum(l_qty) AS qty FROM orders JOIN lines ON o_key = l_key \
               GROUP BY o_key ORDER BY qty DESC, o_key LIMIT 5";
    let plan = client.explain(sql).await;
    assert!(!plan.contains("NetworkShuffleExec"), "{plan}");
    let join_stage = stage_of(&plan, "HashJoinExec").expect("a join");
    assert_eq!(
        stage_of(&plan, "table=orders").as_ref(),
        Some(&join_stage),
        "{plan}"
    );
    assert_eq!(
        stage_of(&plan, "table=lines").as_ref(),
        Some(&join_stage),
        "{plan}"
    );
    insta::assert_snapshot!("co_located_join", without_addresses(&plan));

    // The same answer as a plan that must shuffle (the join key is hidden behind arithmetic).
    let shuffled = "SELECT o_key, sum(l_qty) AS qty FROM orders JOIN lines ON o_key + 0 = l_key + 0 \
                    GROUP BY o_key ORDER BY qty DESC, o_key LIMIT 5";
    assert!(
        client
            .explain(shuffled)
            .await
            .contains("NetworkShuffleExec")
    );
    assert_eq!(
        rows(&client.ok(sql).await),
        rows(&client.ok(shuffled).await)
    );
    let counted = "SELECT count(*), sum(l_qty) FROM orders JOIN lines ON o_key = l_key";
    assert_eq!(
        rows(&client.ok(counted).await),
        vec![vec!["12000".to_string(), "35997".to_string()]]
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn statistics_put_the_small_table_on_the_build_side() {
    let cluster = TestCluster::start(3).await;
    let client = cluster.client().await;
    load_orders_and_lines(&client).await;
    client
        .ok("CREATE TABLE vip (v_cust BIGINT, v_name VARCHAR) WITH (distribution = 'v_cust', shards = 3)")
        .await;
    client
        .ok("INSERT INTO vip VALUES (3, 'three'), (7, 'seven'), (11, 'eleven')")
        .await;

    // Written both ways round, the 3-row table is broadcast and the 3000-row one probed.
    for sql in [
        "SELECT v_name, count(*) FROM orders JOIN vip ON o_cust = v_cust GROUP BY v_name",
        "SELECT v_name, count(*) FROM vip JOIN orders ON o_cust = v_cust GROUP BY v_name",
    ] {
        let plan = client.explain(sql).await;
        assert!(plan.contains("mode=CollectLeft"), "{plan}");
        assert!(plan.contains("NetworkBroadcastExec"), "{plan}");
        let join = plan
            .lines()
            .position(|l| l.contains("HashJoinExec"))
            .expect("a hash join");
        let first_scan = plan
            .lines()
            .skip(join)
            .find(|l| l.contains("ShardScanExec") || l.contains("NetworkBroadcastExec"))
            .expect("join inputs");
        // The build (left) input is printed first: the broadcast of vip.
        assert!(first_scan.contains("NetworkBroadcastExec"), "{plan}");
        let mut answer = rows(&client.ok(sql).await);
        answer.sort();
        assert_eq!(
            answer,
            vec![
                vec!["eleven".to_string(), "60".to_string()],
                vec!["seven".to_string(), "60".to_string()],
                vec!["three".to_string(), "60".to_string()],
            ]
        );
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn explain_analyze_reports_every_stage_and_task() {
    let cluster = TestCluster::start(3).await;
    let client = cluster.client().await;
    load_orders_and_lines(&client).await;

    // Grouping off the distribution key adds a shuffle stage after the co-located join.
    let result = rows(
        &client
            .ok("EXPLAIN ANALYZE SELECT o_cust, count(*) FROM orders JOIN lines ON o_key = l_key GROUP BY o_cust")
            .await,
    );
    let plan = &result[0][1];
    let stages = &result[1][1];
    assert!(plan.contains("output_rows="), "{plan}");
    assert!(plan.contains("bytes_transferred="), "{plan}");
    assert!(stages.starts_with("50 rows in "), "{stages}");
    let lines: Vec<&str> = stages.lines().collect();
    let stage_lines: Vec<&&str> = lines.iter().filter(|l| l.starts_with("Stage ")).collect();
    assert_eq!(
        stage_lines.len(),
        2,
        "join stage and aggregate stage: {stages}"
    );
    // The join stage's three tasks each read only their own executor's shards.
    let join_stage = lines
        .iter()
        .position(|l| l.starts_with("Stage 1"))
        .expect("stage 1");
    for task in &lines[join_stage..join_stage + 3] {
        let columns: Vec<&str> = task.split_whitespace().collect();
        assert_eq!(columns.last(), Some(&"B"), "no remote bytes: {task}");
        assert_eq!(columns[columns.len() - 2], "0", "no remote bytes: {task}");
        assert!(task.contains("KiB"), "local shard bytes: {task}");
    }
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_point_lookup_reads_only_its_row() {
    let cluster = TestCluster::start(3).await;
    let client = cluster.client().await;
    client
        .ok("CREATE TABLE events (k BIGINT, payload VARCHAR) WITH (distribution = 'k', shards = 1)")
        .await;
    // 200,000 rows in key order: four row groups of at most 65,536 rows in the one shard file.
    client
        .ok("INSERT INTO events SELECT value, 'event ' || value FROM generate_series(1, 200000)")
        .await;
    let sql = "SELECT payload FROM events WHERE k = 70000";
    assert_eq!(client.scalar(sql).await, "event 70000");
    let analyzed = rows(&client.ok(&format!("EXPLAIN ANALYZE {sql}")).await);
    let scan = analyzed[0][1]
        .lines()
        .find(|l| l.contains("ShardScanExec"))
        .expect("a shard scan")
        .to_string();
    // One row group of 65,536 rows is read, and only its matching row leaves the reader.
    assert!(scan.contains("output_rows=1,"), "one row read: {scan}");
    cluster.shutdown().await;
}
