//! Real `shoal coordinator` processes, each in its own network namespace, and `shoal executor`
//! processes beside this test; killed, stopped and restarted on demand.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shoal_catalog::NodeStatus;
use shoal_flight::executor_client;
use shoal_flight::rpc;

use super::netns::Network;

/// Ports on the namespaces' private addresses (nothing else can bind there).
const FLIGHT_PORT: u16 = 50051;
const RAFT_PORT: u16 = 50052;

/// Coordinators log every acknowledged write (term, leader) for the split-brain check.
const COORDINATOR_LOG: &str = "info,openraft=warn,shoal_catalog::ack=debug";

pub struct ChaosCluster {
    pub net: Network,
    dir: tempfile::TempDir,
    /// The voters the cluster was formed with (`--peers`).
    founders: Vec<u64>,
    /// Current members, with their process when it runs.
    coordinators: BTreeMap<u64, Option<Child>>,
    executors: Vec<Child>,
}

impl ChaosCluster {
    /// `coordinators` voters formed from `--peers`, and `executors` executors that know them.
    pub async fn start(coordinators: u64, executors: usize) -> Self {
        let net = Network::create().unwrap_or_else(|e| {
            panic!("the chaos tests need root and iproute2 to build network namespaces: {e}")
        });
        let mut cluster = ChaosCluster {
            net,
            dir: tempfile::tempdir().expect("temp dir"),
            founders: (1..=coordinators).collect(),
            coordinators: BTreeMap::new(),
            executors: Vec::new(),
        };
        for id in 1..=coordinators {
            cluster.net.add_coordinator(id).expect("namespace");
            cluster.coordinators.insert(id, None);
        }
        for id in 1..=coordinators {
            cluster.start_coordinator(id);
        }
        for i in 0..executors {
            cluster.start_executor(i);
        }
        cluster.wait_leader(Duration::from_secs(60)).await;
        cluster
    }

    fn peers(&self) -> String {
        self.founders
            .iter()
            .map(|id| format!("{id}={}", Self::raft_address(*id)))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn raft_address(id: u64) -> String {
        format!("{}:{RAFT_PORT}", Network::raft_ip(id))
    }

    pub fn ids(&self) -> Vec<u64> {
        self.coordinators.keys().copied().collect()
    }

    /// The Flight URL of coordinator `id`.
    pub fn url(id: u64) -> String {
        format!("http://{}:{FLIGHT_PORT}", Network::client_ip(id))
    }

    pub fn urls(&self) -> Vec<String> {
        self.ids().into_iter().map(Self::url).collect()
    }

    fn log_path(&self, name: &str) -> PathBuf {
        self.dir.path().join(format!("{name}.log"))
    }

    fn log_file(&self, name: &str) -> std::fs::File {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(name))
            .expect("log file")
    }

    pub fn data_dir(&self, id: u64) -> PathBuf {
        self.dir.path().join(format!("c{id}"))
    }

    /// Starts (or restarts, on the same data dir) coordinator `id` as one of the founders.
    pub fn start_coordinator(&mut self, id: u64) {
        let child = self.spawn_coordinator(id, &["--peers".to_string(), self.peers()]);
        self.coordinators.insert(id, Some(child));
    }

    /// A new coordinator `id` in a namespace of its own, started with `--join` through the
    /// current members; `shoal admin add-coordinator` then makes it a voter.
    pub fn join_coordinator(&mut self, id: u64) {
        self.net.add_coordinator(id).expect("namespace");
        let through: Vec<String> = self.ids().into_iter().map(Self::raft_address).collect();
        let child = self.spawn_coordinator(id, &["--join".to_string(), through.join(",")]);
        self.coordinators.insert(id, Some(child));
    }

    /// Forgets coordinator `id` after it was removed from the group; waits for its process
    /// to exit by itself (a retired coordinator shuts down) and returns whether it did.
    pub fn forget(&mut self, id: u64, timeout: Duration) -> bool {
        let Some(Some(mut child)) = self.coordinators.remove(&id) else {
            return true;
        };
        let exited = wait_exit(&mut child, timeout).is_some();
        let _ = child.kill();
        let _ = child.wait();
        exited
    }

    /// Starts coordinator `id` on its data dir with the founders' `--peers` and returns its
    /// exit status and log, for starts that must be refused.
    pub fn start_expecting_refusal(
        &mut self,
        id: u64,
        timeout: Duration,
    ) -> (Option<std::process::ExitStatus>, String) {
        let mut child = self.spawn_coordinator(id, &["--peers".to_string(), self.peers()]);
        let status = wait_exit(&mut child, timeout);
        let _ = child.kill();
        let _ = child.wait();
        let log = std::fs::read_to_string(self.log_path(&format!("c{id}"))).unwrap_or_default();
        (status, log)
    }

    fn spawn_coordinator(&self, id: u64, membership: &[String]) -> Child {
        Command::new("ip")
            .args(["netns", "exec", &self.net.namespace(id)])
            .arg(env!("CARGO_BIN_EXE_shoal"))
            .args(["coordinator", "--node-id", &id.to_string()])
            .args(membership)
            .arg("--listen")
            .arg(format!("{}:{FLIGHT_PORT}", Network::client_ip(id)))
            .arg("--raft-listen")
            .arg(format!("{}:{RAFT_PORT}", Network::raft_ip(id)))
            .arg("--advertise")
            .arg(Self::url(id))
            .arg("--data-dir")
            .arg(self.data_dir(id))
            .env("SHOAL_LOG", COORDINATOR_LOG)
            .stdout(Stdio::null())
            .stderr(self.log_file(&format!("c{id}")))
            .spawn()
            .expect("coordinator starts")
    }

    fn start_executor(&mut self, i: usize) {
        let child = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .arg("executor")
            .arg("--listen")
            .arg(format!("{}:0", self.net.host_ip()))
            .arg("--coordinator")
            .arg(self.urls().join(","))
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("e{i}")))
            .env("SHOAL_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(self.log_file(&format!("e{i}")))
            .spawn()
            .expect("executor starts");
        self.executors.push(child);
    }

    /// kill -9 coordinator `id`.
    pub fn kill(&mut self, id: u64) {
        if let Some(mut child) = self.coordinators.get_mut(&id).and_then(Option::take) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn is_running(&self, id: u64) -> bool {
        self.coordinators.get(&id).is_some_and(Option::is_some)
    }

    /// SIGSTOP (`stop`) or SIGCONT coordinator `id`.
    pub fn signal(&self, id: u64, stop: bool) {
        let pid = self.coordinators[&id].as_ref().expect("running").id();
        let status = Command::new("kill")
            .arg(if stop { "-STOP" } else { "-CONT" })
            .arg(pid.to_string())
            .status()
            .expect("kill runs");
        assert!(status.success(), "kill -STOP/-CONT {pid}");
    }

    /// Coordinator `id`'s own view of the group, if it answers within a second.
    pub async fn status(id: u64) -> Option<NodeStatus> {
        executor_client::action_with_timeout(
            &Self::url(id),
            rpc::ACTION_CLUSTER_STATUS,
            &(),
            Duration::from_secs(1),
        )
        .await
        .ok()
    }

    /// The leader that a majority of the voters agree on (voters as the coordinator with the
    /// newest term reports them).
    pub async fn leader(&self) -> Option<u64> {
        let mut statuses = Vec::new();
        for id in self.ids().into_iter().filter(|id| self.is_running(*id)) {
            if let Some(status) = Self::status(id).await {
                statuses.push(status);
            }
        }
        let newest = statuses
            .iter()
            .filter(|s| s.leader.is_some())
            .max_by_key(|s| s.term)?;
        let leader = newest.leader?;
        let agreeing = statuses
            .iter()
            .filter(|s| newest.voters.contains(&s.node_id) && s.leader == Some(leader))
            .count();
        (agreeing > newest.voters.len() / 2).then_some(leader)
    }

    /// Waits until a majority of the voters agrees on a leader, and returns it.
    pub async fn wait_leader(&self, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(leader) = self.leader().await {
                return leader;
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {timeout:?}; logs:\n{}",
                self.all_logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The log of every coordinator that ever ran, removed ones included (for the
    /// split-brain check and for failure messages).
    pub fn coordinator_logs(&self) -> BTreeMap<u64, String> {
        let mut logs = BTreeMap::new();
        for entry in std::fs::read_dir(self.dir.path())
            .expect("test dir")
            .flatten()
        {
            let name = entry.file_name().to_string_lossy().to_string();
            let id = name
                .strip_prefix('c')
                .and_then(|rest| rest.strip_suffix(".log"))
                .and_then(|id| id.parse().ok());
            if let Some(id) = id {
                logs.insert(
                    id,
                    std::fs::read_to_string(entry.path()).unwrap_or_default(),
                );
            }
        }
        logs
    }

    fn all_logs(&self) -> String {
        self.coordinator_logs()
            .into_iter()
            .map(|(id, text)| {
                let tail: Vec<&str> = text.lines().rev().take(30).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("--- coordinator {id} ---\n{}", tail.join("\n"))
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Waits up to `timeout` for `child` to exit.
fn wait_exit(child: &mut Child, timeout: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs the `shoal` binary (from this process's network) with `args`; returns whether it
/// succeeded, its stdout and its stderr.
pub async fn shoal(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let out = Command::new(env!("CARGO_BIN_EXE_shoal"))
            .args(&args)
            .output()
            .expect("shoal runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    })
    .await
    .expect("shoal finished")
}

impl Drop for ChaosCluster {
    fn drop(&mut self) {
        for child in self.coordinators.values_mut().filter_map(Option::as_mut) {
            let _ = Command::new("kill")
                .args(["-CONT", &child.id().to_string()])
                .status();
            let _ = child.kill();
            let _ = child.wait();
        }
        for child in &mut self.executors {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
