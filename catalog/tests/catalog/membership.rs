//! Forming a group from `--peers`, refusing a wiped node's old id, and adding and removing
//! coordinators while the group serves.

use shoal_catalog::{Catalog, CatalogConfig, CatalogError, Command, Formation, Rejection};
use tokio::net::TcpListener;

use crate::{ThreeNodes, create, open, three_nodes, with_deadline};

async fn announce(node: &Catalog) {
    node.propose(Command::RegisterCoordinator {
        node_id: node.node_id(),
        flight_address: format!("http://flight-{}", node.node_id()),
        raft_address: node.raft_address().to_string(),
    })
    .await
    .expect("announce");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_form_one_group_and_a_wiped_node_is_refused() {
    with_deadline(180, async {
        let ThreeNodes {
            dirs: _dirs,
            members,
            nodes,
            ..
        } = three_nodes(1000).await;
        let leaders: Vec<u64> = nodes
            .iter()
            .filter_map(|n| n.leader().map(|l| l.0))
            .collect();
        assert!(leaders.windows(2).all(|w| w[0] == w[1]), "{leaders:?}");
        for n in &nodes {
            announce(n).await;
        }
        // A write through the last node reaches everyone; a linearizable read on any node
        // sees it at once.
        let id = create(&nodes[2], "orders", 3).await;
        for n in &nodes {
            let state = n.linearizable_state().await.unwrap();
            assert_eq!(state.table("orders").unwrap().id, id);
            assert_eq!(state.coordinators.len(), 3);
        }
        let status = nodes[0].status().await;
        assert_eq!(status.voters.len(), 3);
        assert!(status.initialized);

        // Node 2 loses its data dir and comes back under the same id: refused, with the way out.
        nodes[1].shutdown().await.unwrap();
        let wiped = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind(members[&2].as_str()).await.unwrap();
        let back = open(2, wiped.path(), listener, 1000).await;
        let refused = back.start(Formation::Bootstrap(members.clone())).await;
        match refused {
            Err(CatalogError::Misconfigured(msg)) => {
                assert!(msg.contains("never reused"), "{msg}");
                assert!(msg.contains("remove-coordinator"), "{msg}");
            }
            other => panic!("a wiped node must be refused, got {other:?}"),
        }
        back.shutdown().await.unwrap();
        for n in [&nodes[0], &nodes[2]] {
            n.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_joins_by_snapshot_and_a_removed_id_stays_retired() {
    with_deadline(240, async {
        let ThreeNodes {
            dirs: _dirs,
            members,
            nodes,
            ..
        } = three_nodes(5).await;
        for i in 0..12 {
            create(&nodes[0], &format!("t{i}"), 1).await;
        }
        // A fourth node joins through any member; the group copies the catalog to it (by
        // snapshot: the log was purged every 5 entries) and makes it a voter.
        let dir4 = tempfile::tempdir().unwrap();
        let l4 = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr4 = l4.local_addr().unwrap().to_string();
        let n4 = open(4, dir4.path(), l4, 5).await;
        n4.start(Formation::Join(members.values().cloned().collect()))
            .await
            .unwrap();
        nodes[1].add_coordinator(4, addr4.clone()).await.unwrap();
        let state = n4.linearizable_state().await.unwrap();
        assert_eq!(state.tables.len(), 12);
        assert!(n4.status().await.voters.contains(&4));
        create(&n4, "after_join", 1).await;

        // Remove node 3 while the group serves; its id can never come back.
        nodes[0].remove_coordinator(3).await.unwrap();
        let status = n4.status().await;
        assert_eq!(status.voters, [1, 2, 4].into_iter().collect());
        assert!(n4.linearizable_state().await.unwrap().coordinators[&3].retired);
        match nodes[0].add_coordinator(3, members[&3].clone()).await {
            Err(CatalogError::Rejected(Rejection::CoordinatorRetired(3))) => {}
            other => panic!("a retired id must be refused, got {other:?}"),
        }
        create(&nodes[1], "after_remove", 1).await;
        for n in [&nodes[0], &nodes[1], &nodes[2], &n4] {
            n.shutdown().await.unwrap();
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_dir_keeps_its_node_id() {
    with_deadline(60, async {
        let dir = tempfile::tempdir().unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let first = Catalog::open(CatalogConfig::new(1, dir.path(), addr.clone()), l)
            .await
            .unwrap();
        first.shutdown().await.unwrap();
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        match Catalog::open(CatalogConfig::new(2, dir.path(), addr), l).await {
            Err(CatalogError::Misconfigured(msg)) => {
                assert!(msg.contains("coordinator 1"), "{msg}")
            }
            other => panic!("expected a refusal, got {other:?}"),
        }
    })
    .await;
}
