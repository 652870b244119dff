//! Executor memory limits: a sort that does not fit spills to disk when spilling is on, and
//! fails with RESOURCE_EXHAUSTED (leaving the executors serving) when it is off.

use shoal::local_cluster::LocalClusterOptions;
use shoal_executor::MemoryConfig;
use tonic::Code;

use crate::common::{TestCluster, row_count};

/// About 55 MB of sort input spread over 3 executors, against 24 MiB each (of which a sort
/// keeps 10 MB back for merging its spill files).
const LIMIT: usize = 24 << 20;
const ROWS: usize = 1_200_000;
const SORT: &str = "SELECT k, v FROM big ORDER BY v";

async fn cluster_with(spill: bool) -> TestCluster {
    let mut options = LocalClusterOptions::new(3);
    options.executor_memory = MemoryConfig {
        limit: Some(LIMIT),
        spill,
    };
    let cluster = TestCluster::start_with(options).await;
    let client = cluster.client().await;
    client
        .ok("CREATE TABLE big (k BIGINT, v VARCHAR) WITH (distribution = 'k')")
        .await;
    client
        .ok(&format!(
            "INSERT INTO big SELECT value, md5(CAST(value AS VARCHAR)) FROM generate_series(1, {ROWS})"
        ))
        .await;
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sort_beyond_the_limit_spills_to_disk() {
    let cluster = cluster_with(true).await;
    let client = cluster.client().await;
    let sorted = client.ok(SORT).await;
    assert_eq!(row_count(&sorted), ROWS);
    let first = crate::common::rows(&sorted[..1])[0][1].clone();
    assert_eq!(
        first,
        client.scalar("SELECT min(v) FROM big").await,
        "sorted output starts at the smallest value"
    );
    cluster.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sort_beyond_the_limit_without_spill_is_resource_exhausted() {
    let cluster = cluster_with(false).await;
    let client = cluster.client().await;
    let status = client.query(SORT).await.expect_err("does not fit");
    assert_eq!(
        status.code(),
        Code::ResourceExhausted,
        "{}",
        status.message()
    );
    assert!(
        !status.message().contains('\n'),
        "one line: {}",
        status.message()
    );
    // The executors are still up and answer what fits.
    assert_eq!(
        client
            .scalar("SELECT count(*) FROM big WHERE k <= 1000")
            .await,
        "1000"
    );
    cluster.shutdown().await;
}
