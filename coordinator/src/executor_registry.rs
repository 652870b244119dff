//! Which executors are alive: soft state fed by heartbeats, never written to Raft.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shoal_catalog::{CatalogState, ExecutorId, ExecutorInfo};

/// An executor that missed heartbeats for this long is not scheduled.
pub const LIVENESS_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, Default, Clone)]
pub struct ExecutorRegistry {
    last_seen: Arc<Mutex<HashMap<ExecutorId, Instant>>>,
}

impl ExecutorRegistry {
    pub fn heartbeat(&self, id: ExecutorId) {
        self.last_seen
            .lock()
            .expect("not poisoned")
            .insert(id, Instant::now());
    }

    pub fn is_live(&self, id: ExecutorId) -> bool {
        self.last_seen
            .lock()
            .expect("not poisoned")
            .get(&id)
            .is_some_and(|t| t.elapsed() < LIVENESS_TIMEOUT)
    }

    /// Live executors known to `state`, ordered by id (the order placement uses).
    pub fn live(&self, state: &CatalogState) -> Vec<ExecutorInfo> {
        state
            .executors
            .values()
            .filter(|e| self.is_live(e.id))
            .cloned()
            .collect()
    }

    /// Flight address of every executor id, live or not, for the scans' owner lists.
    pub fn addresses(state: &CatalogState) -> HashMap<ExecutorId, String> {
        state
            .executors
            .values()
            .map(|e| (e.id, e.address.clone()))
            .collect()
    }
}
