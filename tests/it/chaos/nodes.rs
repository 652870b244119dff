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
        cluster.wait_healthy(Duration::from_secs(60)).await;
        cluster
    }

    fn peers(&self) -> String {
        self.coordinators
            .keys()
            .map(|id| format!("{id}={}:{RAFT_PORT}", Network::raft_ip(*id)))
            .collect::<Vec<_>>()
            .join(",")
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

    /// Starts (or restarts, on the same data dir) coordinator `id`.
    pub fn start_coordinator(&mut self, id: u64) {
        let data_dir = self.dir.path().join(format!("c{id}"));
        let child = Command::new("ip")
            .args(["netns", "exec", &self.net.namespace(id)])
            .arg(env!("CARGO_BIN_EXE_shoal"))
            .args(["coordinator", "--node-id", &id.to_string(), "--peers"])
            .arg(self.peers())
            .arg("--listen")
            .arg(format!("{}:{FLIGHT_PORT}", Network::client_ip(id)))
            .arg("--raft-listen")
            .arg(format!("{}:{RAFT_PORT}", Network::raft_ip(id)))
            .arg("--advertise")
            .arg(Self::url(id))
            .arg("--data-dir")
            .arg(&data_dir)
            .env("SHOAL_LOG", COORDINATOR_LOG)
            .stdout(Stdio::null())
            .stderr(self.log_file(&format!("c{id}")))
            .spawn()
            .expect("coordinator starts");
        self.coordinators.insert(id, Some(child));
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

    /// The leader that a majority of the running coordinators agree on.
    pub async fn leader(&self) -> Option<u64> {
        let mut votes: BTreeMap<u64, usize> = BTreeMap::new();
        for id in self.ids().into_iter().filter(|id| self.is_running(*id)) {
            if let Some(leader) = Self::status(id).await.and_then(|s| s.leader) {
                *votes.entry(leader).or_default() += 1;
            }
        }
        let majority = self.coordinators.len() / 2 + 1;
        votes
            .into_iter()
            .find(|(_, n)| *n >= majority)
            .map(|(leader, _)| leader)
    }

    /// Waits until a majority of the coordinators agrees on a leader.
    pub async fn wait_healthy(&self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            if self.leader().await.is_some() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no leader within {timeout:?}; logs:\n{}",
                self.all_logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every coordinator's log so far (for the split-brain check and for failure messages).
    pub fn coordinator_logs(&self) -> BTreeMap<u64, String> {
        self.ids()
            .into_iter()
            .map(|id| {
                let text =
                    std::fs::read_to_string(self.log_path(&format!("c{id}"))).unwrap_or_default();
                (id, text)
            })
            .collect()
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
