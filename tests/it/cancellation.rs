//! A client that goes away stops its query everywhere: once the DoGet stream is dropped, the
//! coordinator's and every executor's work on it ends within a second, and the cluster answers.

use std::time::{Duration, Instant};

use crate::common::{TestCluster, within};

/// CPU seconds this process (the whole in-process cluster) has used.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("procfs");
    // Fields after the parenthesized command name; utime and stime are the 12th and 13th.
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    ticks as f64 / 100.0
}

/// CPU seconds used over the next `window`.
pub(crate) async fn cpu_over(window: Duration) -> f64 {
    let before = cpu_seconds();
    tokio::time::sleep(window).await;
    cpu_seconds() - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dropping_the_stream_stops_the_query_on_every_node() {
    let cluster = TestCluster::start(3).await;
    let sql = cluster.client().await;
    // Sharded, the joins run on the executors; unsharded, the coordinator runs the plan.
    sql.ok("CREATE TABLE nums (id BIGINT) WITH (distribution = 'id')")
        .await;
    sql.ok("CREATE TABLE local_nums (id BIGINT)").await;
    let values: Vec<String> = (0..20_000).map(|i| format!("({i})")).collect();
    for table in ["nums", "local_nums"] {
        sql.ok(&format!("INSERT INTO {table} VALUES {}", values.join(",")))
            .await;
    }

    for table in ["nums", "local_nums"] {
        within(120, "cancellation", async {
            // Eight trillion triples through cross joins: far more than a test's lifetime of work.
            let slow = format!(
                "SELECT count(*) FROM {table} a, {table} b, {table} c WHERE a.id + b.id + c.id < 0"
            );
            let slow = slow.as_str();
            let mut stream = sql.open(slow).await.expect("the query starts");
            let next = tokio::spawn(async move {
                loop {
                    match stream.message().await {
                        Ok(Some(_)) => continue,
                        other => return other.map(|_| ()),
                    }
                }
            });
            let busy = cpu_over(Duration::from_secs(2)).await;
            assert!(
                busy > 0.8,
                "the query should keep a core busy, used {busy:.2} s in 2 s"
            );
            if next.is_finished() {
                panic!(
                    "the query ended before it could be cancelled: {:?}",
                    next.await
                );
            }
            next.abort(); // drops the stream: the client went away
            let _ = next.await;

            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = cpu_over(Duration::from_secs(2)).await;
            assert!(
                after < 0.3,
                "{table}: work went on after the client left: {after:.2} CPU seconds in 2 s"
            );
            let started = Instant::now();
            assert_eq!(
                sql.scalar(&format!("SELECT count(*) FROM {table}")).await,
                "20000"
            );
            assert!(started.elapsed() < Duration::from_secs(2));
        })
        .await;
    }
    cluster.shutdown().await;
}
