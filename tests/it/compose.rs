//! The root `docker-compose.yml` as a user runs it: build the image with
//! `scripts/docker-build.sh` (no registry), bring up 3 coordinators and 3 executors, load data,
//! kill and restart the leader's container, cut a coordinator off the network, and check the
//! answers through the coordinators that remain.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::chaos::SqlConn;
use crate::common::rows;

const ROWS: i64 = 100_000;

/// A compose project, taken down (with its volumes) when dropped.
struct Compose {
    project: String,
}

impl Compose {
    fn run(&self, args: &[&str]) -> String {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = Command::new("docker-compose")
            .current_dir(root)
            .args(["-p", &self.project, "-f", "docker-compose.yml"])
            .args(args)
            .env("SHOAL_PORT_C1", "0")
            .env("SHOAL_PORT_C2", "0")
            .env("SHOAL_PORT_C3", "0")
            .output()
            .expect("docker-compose runs");
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    fn container(&self, service: &str) -> String {
        format!("{}_{service}_1", self.project)
    }

    /// `grpc://127.0.0.1:<published port>` of a coordinator service.
    fn url(&self, service: &str) -> String {
        let published = self.run(&["port", service, "50051"]);
        let port = published.rsplit(':').next().expect("host:port");
        format!("http://127.0.0.1:{port}")
    }

    fn docker(&self, args: &[&str]) {
        let status = Command::new("docker")
            .args(args)
            .status()
            .expect("docker runs");
        assert!(status.success(), "docker {args:?} failed");
    }
}

impl Drop for Compose {
    fn drop(&mut self) {
        let _ = Command::new("docker-compose")
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .args([
                "-p",
                &self.project,
                "-f",
                "docker-compose.yml",
                "down",
                "-v",
                "-t",
                "1",
            ])
            .env("SHOAL_PORT_C1", "0")
            .env("SHOAL_PORT_C2", "0")
            .env("SHOAL_PORT_C3", "0")
            .output();
    }
}

/// Retries `sql` on `url` until it succeeds; returns its rows.
async fn eventually(url: &str, sql: &str, timeout: Duration) -> Vec<Vec<String>> {
    let deadline = Instant::now() + timeout;
    let conn = SqlConn::new(url);
    loop {
        match conn.query(sql).await {
            Ok(batches) => return rows(&batches),
            Err(status) => assert!(
                Instant::now() < deadline,
                "{sql} on {url} kept failing: {status:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn leader_service(compose: &Compose) -> String {
    for service in ["coordinator1", "coordinator2", "coordinator3"] {
        let status: Result<shoal_catalog::NodeStatus, _> =
            shoal_flight::executor_client::action_with_timeout(
                &compose.url(service),
                shoal_flight::rpc::ACTION_CLUSTER_STATUS,
                &(),
                Duration::from_secs(2),
            )
            .await;
        if let Ok(status) = status
            && let Some(leader) = status.leader
        {
            return format!("coordinator{leader}");
        }
    }
    panic!("no coordinator knows a leader");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compose_cluster_survives_container_loss() {
    let built = Command::new(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/docker-build.sh"))
        .arg(env!("CARGO_BIN_EXE_shoal"))
        .output()
        .expect("build script runs");
    assert!(
        built.status.success(),
        "scripts/docker-build.sh failed: {}",
        String::from_utf8_lossy(&built.stderr)
    );
    let compose = Compose {
        project: format!("shoaltest{}", std::process::id()),
    };
    compose.run(&["up", "-d"]);
    let c1 = compose.url("coordinator1");
    let wait = Duration::from_secs(90);
    eventually(&c1, "CREATE TABLE kv (k BIGINT, v BIGINT)", wait).await;
    eventually(
        &c1,
        &format!("INSERT INTO kv SELECT value, value * 2 FROM generate_series(1, {ROWS})"),
        wait,
    )
    .await;
    let expected = vec![vec![ROWS.to_string(), (ROWS * (ROWS + 1)).to_string()]];
    let check = "SELECT count(*), sum(v) FROM kv";
    for service in ["coordinator1", "coordinator2", "coordinator3"] {
        assert_eq!(
            eventually(&compose.url(service), check, wait).await,
            expected
        );
    }

    // Kill the leader's container: the other two elect a leader and keep serving.
    let leader = leader_service(&compose).await;
    let survivor = ["coordinator1", "coordinator2", "coordinator3"]
        .into_iter()
        .find(|s| *s != leader)
        .unwrap();
    let survivor_url = compose.url(survivor);
    compose.docker(&["kill", &compose.container(&leader)]);
    eventually(&survivor_url, "INSERT INTO kv VALUES (0, 1)", wait).await;
    let after_kill = vec![vec![
        (ROWS + 1).to_string(),
        (ROWS * (ROWS + 1) + 1).to_string(),
    ]];
    assert_eq!(eventually(&survivor_url, check, wait).await, after_kill);

    // Restart it: it catches up, including the write made while it was down.
    compose.run(&["start", &leader]);
    assert_eq!(
        eventually(&compose.url(&leader), check, wait).await,
        after_kill
    );

    // Cut one coordinator off the network; the others still answer and accept writes.
    let network = format!("{}_shoal", compose.project);
    let cut = survivor;
    let others: Vec<&str> = ["coordinator1", "coordinator2", "coordinator3"]
        .into_iter()
        .filter(|s| *s != cut)
        .collect();
    compose.docker(&["network", "disconnect", &network, &compose.container(cut)]);
    let other_url = compose.url(others[0]);
    eventually(&other_url, "INSERT INTO kv VALUES (-1, 2)", wait).await;
    let after_cut = vec![vec![
        (ROWS + 2).to_string(),
        (ROWS * (ROWS + 1) + 3).to_string(),
    ]];
    assert_eq!(
        eventually(&compose.url(others[1]), check, wait).await,
        after_cut
    );

    // Reconnect it: it catches up too.
    compose.docker(&["network", "connect", &network, &compose.container(cut)]);
    assert_eq!(eventually(&compose.url(cut), check, wait).await, after_cut);
}
