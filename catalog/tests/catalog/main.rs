//! End-to-end tests of `Catalog`: single-node durability across restarts and a 3-node cluster
//! on 127.0.0.1:0 listeners with forwarding and failover.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use shoal_catalog::{
    Catalog, CatalogConfig, CatalogError, Command, Formation, Rejection, Response, ShardFile,
    TableDef,
};
use tokio::net::TcpListener;

mod membership;

/// Every test runs under a deadline so that a hang fails instead of blocking CI.
async fn with_deadline<F: Future<Output = ()>>(secs: u64, f: F) {
    tokio::time::timeout(Duration::from_secs(secs), f)
        .await
        .expect("test timed out");
}

fn table(name: &str, shards: u32) -> TableDef {
    TableDef {
        id: 0,
        name: name.into(),
        schema_ipc: vec![9, 9],
        distribution: Some("k".into()),
        shard_count: shards,
        replication: 1,
        placement: (0..shards).map(|_| vec![1]).collect(),
        created_index: 0,
    }
}

fn file(bucket: u32, path: &str) -> ShardFile {
    ShardFile {
        id: 0,
        table_id: 0,
        bucket,
        path: path.into(),
        rows: 5,
        bytes: 50,
        column_stats: vec![],
        owners: vec![1],
        txn: 0,
    }
}

async fn open(node_id: u64, dir: &Path, listener: TcpListener, snapshot_every: u64) -> Catalog {
    let addr = listener.local_addr().unwrap().to_string();
    let mut config = CatalogConfig::new(node_id, dir, addr);
    config.snapshot_every = snapshot_every;
    Catalog::open(config, listener).await.expect("open catalog")
}

/// Three catalogs on 127.0.0.1:0, started at once with the same members (as `--peers`), so
/// they form one Raft group by themselves.
pub(crate) struct ThreeNodes {
    pub dirs: Vec<tempfile::TempDir>,
    pub members: BTreeMap<u64, String>,
    pub nodes: Vec<Catalog>,
    pub leader_id: u64,
}

async fn three_nodes(snapshot_every: u64) -> ThreeNodes {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut listeners = Vec::new();
    let mut members = BTreeMap::new();
    for id in 1..=3u64 {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        members.insert(id, l.local_addr().unwrap().to_string());
        listeners.push(l);
    }
    let mut nodes = Vec::new();
    for (i, l) in listeners.into_iter().enumerate() {
        nodes.push(open(i as u64 + 1, dirs[i].path(), l, snapshot_every).await);
    }
    let starts = nodes
        .iter()
        .map(|n| n.start(Formation::Bootstrap(members.clone())));
    for started in futures::future::join_all(starts).await {
        started.expect("start with the members");
    }
    let mut leader_id = 0;
    for n in &nodes {
        leader_id = n.wait_leader(Duration::from_secs(30)).await.unwrap();
    }
    ThreeNodes {
        dirs,
        members,
        nodes,
        leader_id,
    }
}

/// Creates table `name`, retrying while the catalog answers with a retryable error (during an
/// election it refuses writes rather than wait). `if_not_exists` makes a retry of a write that
/// did apply harmless.
async fn create(cat: &Catalog, name: &str, shards: u32) -> u64 {
    loop {
        match cat
            .propose(Command::CreateTable {
                table: table(name, shards),
                if_not_exists: true,
            })
            .await
        {
            Ok(Response::TableCreated { id, .. }) => return id,
            Err(e) if e.retryable() => tokio::time::sleep(Duration::from_millis(100)).await,
            other => panic!("create {name}: {other:?}"),
        }
    }
}

/// Begins and commits a write of `files` into `name`; returns the committed files.
async fn write(cat: &Catalog, name: &str, files: Vec<ShardFile>) -> Vec<ShardFile> {
    let txn = match cat
        .propose(Command::BeginWrite { table: name.into() })
        .await
    {
        Ok(Response::WriteBegun { txn, .. }) => txn,
        other => panic!("begin {name}: {other:?}"),
    };
    match cat
        .propose(Command::CommitWrite {
            txn,
            files,
            replace: false,
        })
        .await
    {
        Ok(Response::WriteCommitted { files, .. }) => files,
        other => panic!("commit {name}: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_node_state_survives_restart() {
    with_deadline(120, async {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A small snapshot interval so that snapshots and log purging run too.
        let cat = open(1, dir.path(), listener, 5).await;
        cat.bootstrap_single().await.unwrap();
        assert!(cat.is_leader());

        let t_id = create(&cat, "orders", 2).await;
        let committed = write(
            &cat,
            "orders",
            vec![file(0, "o/0.parquet"), file(1, "o/1.parquet")],
        )
        .await;
        assert_eq!(committed.len(), 2);
        // Read-your-writes: the state already shows the commit.
        assert_eq!(cat.state().table_files(t_id), committed.as_slice());

        // Enough entries to cross several snapshot intervals.
        for i in 0..12 {
            create(&cat, &format!("t{i}"), 1).await;
        }
        let dup = cat
            .propose(Command::CreateTable {
                table: table("orders", 2),
                if_not_exists: false,
            })
            .await;
        assert!(
            matches!(dup, Err(CatalogError::Rejected(Rejection::TableExists(_)))),
            "{dup:?}"
        );
        assert!(!dup.unwrap_err().retryable());
        // Snapshots were built and the log behind them purged, so the restart below relies on
        // the stored state rather than on replaying the whole log.
        cat.raft()
            .wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| m.snapshot.is_some() && m.purged.is_some(),
                "snapshot and purge",
            )
            .await
            .expect("snapshot built and log purged");

        let before = cat.state();
        let applied = cat.applied_index();
        cat.shutdown().await.unwrap();
        drop(cat);

        let listener = TcpListener::bind(addr).await.unwrap();
        let cat = open(1, dir.path(), listener, 5).await;
        // The applied state is back before any election.
        let after = cat.state();
        assert!(
            cat.applied_index() >= applied,
            "applied {} < {applied}",
            cat.applied_index()
        );
        assert_eq!(after.tables, before.tables);
        assert_eq!(after.files, before.files);
        assert_eq!(after.next_id, before.next_id);

        cat.bootstrap_single().await.unwrap();
        let u_id = create(&cat, "lineitem", 2).await;
        assert!(u_id > t_id);
        let more = write(&cat, "orders", vec![file(1, "o/2.parquet")]).await;
        assert!(committed.iter().all(|f| f.id != more[0].id));
        assert_eq!(cat.state().table_files(t_id).len(), 3);
        cat.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_proposals_all_apply() {
    with_deadline(90, async {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let cat = open(1, dir.path(), listener, 1000).await;
        cat.bootstrap_single().await.unwrap();
        let mut tasks = Vec::new();
        for i in 0..16 {
            let cat = cat.clone();
            tasks.push(tokio::spawn(async move {
                create(&cat, &format!("c{i}"), 1).await
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 16);
        assert_eq!(cat.state().tables.len(), 16);
        cat.shutdown().await.unwrap();
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_nodes_forward_converge_and_fail_over() {
    with_deadline(180, async {
        // `_dirs` keeps the temp dirs alive for the whole test.
        let ThreeNodes {
            dirs: _dirs,
            nodes,
            leader_id,
            ..
        } = three_nodes(1000).await;
        for n in &nodes {
            n.wait_leader(Duration::from_secs(30)).await.unwrap();
        }
        let follower = nodes
            .iter()
            .find(|n| n.node_id() != leader_id)
            .unwrap()
            .clone();
        assert!(!follower.is_leader());

        // A write through a follower is forwarded, and the follower reads its own write.
        let t_id = create(&follower, "orders", 3).await;
        assert_eq!(follower.state().table("orders").unwrap().id, t_id);
        let files = write(&follower, "orders", vec![file(2, "x.parquet")]).await;
        let dup = follower
            .propose(Command::CreateTable {
                table: table("orders", 3),
                if_not_exists: false,
            })
            .await;
        assert!(
            matches!(dup, Err(CatalogError::Rejected(Rejection::TableExists(_)))),
            "{dup:?}"
        );

        // Every node converges on the same state.
        let index = follower.applied_index();
        for n in &nodes {
            n.wait_applied(index, Duration::from_secs(30))
                .await
                .unwrap();
            let s = n.state();
            assert_eq!(s.table("orders").unwrap().id, t_id);
            assert_eq!(s.table_files(t_id), files.as_slice());
        }

        // Fail over: stop the leader; the other two elect a new one and keep accepting writes.
        let old_leader = nodes.iter().position(|n| n.node_id() == leader_id).unwrap();
        nodes[old_leader].shutdown().await.unwrap();
        let survivors: Vec<Catalog> = nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != old_leader)
            .map(|(_, n)| n.clone())
            .collect();
        let new_id = create(&survivors[0], "lineitem", 3).await;
        assert_ne!(new_id, t_id);
        let index = survivors[0].applied_index();
        for n in &survivors {
            n.wait_applied(index, Duration::from_secs(30))
                .await
                .unwrap();
            assert_eq!(n.state().table("lineitem").unwrap().id, new_id);
            let leader = n.wait_leader(Duration::from_secs(30)).await.unwrap();
            assert_ne!(leader, leader_id);
        }
        for n in &survivors {
            n.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot() {
    with_deadline(180, async {
        let ThreeNodes {
            dirs,
            members,
            nodes,
            leader_id,
        } = three_nodes(5).await;
        let leader = nodes
            .iter()
            .find(|n| n.node_id() == leader_id)
            .unwrap()
            .clone();
        let lagger = nodes.iter().position(|n| n.node_id() != leader_id).unwrap();
        let lagger_id = nodes[lagger].node_id();
        create(&leader, "first", 1).await;
        nodes[lagger]
            .wait_applied(leader.applied_index(), Duration::from_secs(30))
            .await
            .unwrap();
        let lagger_index = nodes[lagger].applied_index();
        nodes[lagger].shutdown().await.unwrap();

        // The remaining two keep a quorum; write far past the lagger and purge the log behind it.
        for i in 0..20 {
            create(&leader, &format!("t{i}"), 1).await;
        }
        leader
            .raft()
            .wait(Some(Duration::from_secs(30)))
            .metrics(
                |m| m.purged.is_some_and(|p| p.index > lagger_index),
                "log purged past the lagger",
            )
            .await
            .expect("leader purged its log");

        // The restarted follower can only catch up through InstallSnapshot.
        let listener = TcpListener::bind(members[&lagger_id].as_str())
            .await
            .unwrap();
        let back = open(lagger_id, dirs[lagger].path(), listener, 5).await;
        back.wait_applied(leader.applied_index(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(back.state().tables, leader.state().tables);
        assert_eq!(back.state().tables.len(), 21);
        back.shutdown().await.unwrap();
        for n in nodes.iter().filter(|n| n.node_id() != lagger_id) {
            n.shutdown().await.unwrap();
        }
    })
    .await;
}
