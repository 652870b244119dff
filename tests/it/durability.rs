//! After an acknowledged INSERT, kill -9 the process and start it again on the same data dir:
//! the rows are there and queries give the same answers.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{Client, within};

const QUERY: &str = "SELECT l_returnflag, count(*), sum(l_quantity) FROM lineitem GROUP BY l_returnflag ORDER BY l_returnflag";

/// A `shoal demo` process, killed (SIGKILL) when dropped, so that a failing assertion does
/// not leave it running.
struct DemoProcess(Child);

impl DemoProcess {
    fn kill_9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for DemoProcess {
    fn drop(&mut self) {
        self.kill_9();
    }
}

/// Starts `shoal demo --no-prompt` and returns it with its Flight SQL URL.
fn start_demo(data_dir: &std::path::Path) -> (DemoProcess, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shoal"))
        .args([
            "demo",
            "--no-prompt",
            "--port",
            "0",
            "--scale",
            "0.01",
            "--executors",
            "2",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("shoal binary starts");
    let stdout = child.stdout.take().unwrap();
    let child = DemoProcess(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("Flight SQL: ") {
                let _ = tx.send(url.to_string());
            }
        }
    });
    let url = rx
        .recv_timeout(Duration::from_secs(240))
        .expect("demo prints its URL");
    (child, url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn acknowledged_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let (mut first, url) = start_demo(dir.path());
    let client = Client::connect(&url).await;
    client.ok("CREATE TABLE audit (id BIGINT NOT NULL, note VARCHAR) WITH (distribution = 'id', replication = 2)").await;
    client
        .ok("INSERT INTO audit VALUES (1, 'before crash'), (2, 'also acknowledged')")
        .await;
    let answer_before = client.ok(QUERY).await;
    first.kill_9(); // no shutdown path runs

    let started = Instant::now();
    let (mut second, url) = start_demo(dir.path());
    let client = Client::connect(&url).await;
    within(60, "queries after restart", async {
        assert_eq!(client.scalar("SELECT count(*) FROM audit").await, "2");
        assert_eq!(
            client.scalar("SELECT note FROM audit WHERE id = 1").await,
            "before crash"
        );
        let answer_after = client.ok(QUERY).await;
        assert_eq!(
            crate::common::rows(&answer_after),
            crate::common::rows(&answer_before)
        );
    })
    .await;
    eprintln!(
        "restarted and verified in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    second.kill_9();
}
