//! Private networks for real coordinator processes: every coordinator runs in its own network
//! namespace with one leg on a client network (shared with this test process and the
//! executors) and one on a Raft network. Cutting a coordinator's Raft leg isolates it from its
//! peers while clients can still reach it, which is how a minority partition looks to users.
//!
//! Both bridges live in a namespace of their own, so the host's firewall (Docker sets the
//! FORWARD policy to DROP, and bridged traffic passes through it) never sees their traffic.

use std::process::Command;

/// Client network: this process and the executors are `.1`, coordinator `i` is `.10+i`.
const CLIENT_NET: &str = "10.77.0";
/// Raft network: coordinator `i` is `.10+i`.
const RAFT_NET: &str = "10.78.0";

/// The namespaces and links of one test; removed on drop.
pub struct Network {
    run: String,
    coordinators: Vec<u64>,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip`: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "`ip {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Network {
    /// The hub with both bridges and this process's leg on the client network. Needs root
    /// (CAP_NET_ADMIN) and iproute2.
    pub fn create() -> Result<Self, String> {
        let run = format!("{}", std::process::id() % 100_000);
        let network = Network {
            run,
            coordinators: Vec::new(),
        };
        // A leftover from a killed earlier run with the same id would make `add` fail.
        network.remove();
        let hub = network.hub();
        let host_leg = network.host_leg();
        ip(&["netns", "add", &hub])?;
        ip(&["-n", &hub, "link", "set", "lo", "up"])?;
        for bridge in ["brc", "brr"] {
            ip(&["-n", &hub, "link", "add", bridge, "type", "bridge"])?;
            ip(&["-n", &hub, "link", "set", bridge, "up"])?;
        }
        ip(&[
            "link", "add", &host_leg, "type", "veth", "peer", "name", "host", "netns", &hub,
        ])?;
        ip(&[
            "addr",
            "add",
            &format!("{CLIENT_NET}.1/24"),
            "dev",
            &host_leg,
        ])?;
        ip(&["link", "set", &host_leg, "up"])?;
        ip(&["-n", &hub, "link", "set", "host", "master", "brc"])?;
        ip(&["-n", &hub, "link", "set", "host", "up"])?;
        Ok(network)
    }

    fn hub(&self) -> String {
        format!("shoal-hub-{}", self.run)
    }

    fn host_leg(&self) -> String {
        format!("shoal{}", self.run)
    }

    /// The namespace coordinator `id` runs in.
    pub fn namespace(&self, id: u64) -> String {
        format!("shoal-c{id}-{}", self.run)
    }

    /// The address of this process and of the executors on the client network.
    pub fn host_ip(&self) -> String {
        format!("{CLIENT_NET}.1")
    }

    pub fn client_ip(id: u64) -> String {
        format!("{CLIENT_NET}.{}", 10 + id)
    }

    pub fn raft_ip(id: u64) -> String {
        format!("{RAFT_NET}.{}", 10 + id)
    }

    /// A namespace for coordinator `id`, with its legs on both networks.
    pub fn add_coordinator(&mut self, id: u64) -> Result<(), String> {
        let ns = self.namespace(id);
        let hub = self.hub();
        ip(&["netns", "add", &ns])?;
        self.coordinators.push(id);
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        for (dev, hub_dev, bridge, address) in [
            ("eth0", format!("c{id}c"), "brc", Self::client_ip(id)),
            ("eth1", format!("c{id}r"), "brr", Self::raft_ip(id)),
        ] {
            ip(&[
                "link", "add", dev, "netns", &ns, "type", "veth", "peer", "name", &hub_dev,
                "netns", &hub,
            ])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{address}/24"),
                "dev",
                dev,
            ])?;
            ip(&["-n", &ns, "link", "set", dev, "up"])?;
            ip(&["-n", &hub, "link", "set", &hub_dev, "master", bridge])?;
            ip(&["-n", &hub, "link", "set", &hub_dev, "up"])?;
        }
        Ok(())
    }

    /// Cuts (or restores) coordinator `id`'s Raft leg: it no longer reaches its peers nor
    /// they it, while clients and executors still reach it.
    pub fn set_raft_link(&self, id: u64, up: bool) -> Result<(), String> {
        let state = if up { "up" } else { "down" };
        ip(&["-n", &self.hub(), "link", "set", &format!("c{id}r"), state])
    }

    fn remove(&self) {
        // Deleting a namespace deletes the veth ends in it and, with them, their peers.
        let _ = ip(&["link", "del", &self.host_leg()]);
        // Also the namespaces a killed earlier run with the same id may have left behind.
        let mut ids: Vec<u64> = (1..=5).collect();
        ids.extend(&self.coordinators);
        for id in ids {
            let _ = ip(&["netns", "del", &self.namespace(id)]);
        }
        let _ = ip(&["netns", "del", &self.hub()]);
    }
}

impl Drop for Network {
    fn drop(&mut self) {
        self.remove();
    }
}
