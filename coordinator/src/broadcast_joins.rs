//! `BroadcastJoins`: a partitioned hash join whose build side is small next to its probe side
//! broadcasts the build side instead, so the large side is read where it lies and never
//! shuffled.
//!
//! DataFusion's `JoinSelection` collects a build side only below fixed thresholds (1 MB or
//! 128Ki rows) because on one machine a partitioned join costs no network. Across executors a
//! partitioned join moves both inputs over the network while a broadcast moves the build side
//! once per executor: in TPC-H Q5 that is 227K rows of `orders ⋈ customer` three times
//! instead of all 6M rows of `lineitem`. Runs right after `JoinSelection` and before
//! [`crate::co_located_joins::CoLocatedJoins`] (which keeps co-partitioned joins local).

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{JoinType, Result};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};

use crate::co_located_joins::co_partitioned;

/// Build sides estimated above this stay partitioned whatever the probe side: every executor
/// holds a broadcast build side in memory whole.
const MAX_BROADCAST_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
pub struct BroadcastJoins {
    /// Executors a broadcast goes to.
    executors: usize,
}

impl BroadcastJoins {
    pub fn new(executors: usize) -> Self {
        Self {
            executors: executors.max(1),
        }
    }

    /// Broadcasting `build` to every executor moves no more than shuffling `probe` would.
    fn cheaper_to_broadcast(&self, join: &HashJoinExec) -> Result<bool> {
        let statistics = StatisticsContext::new();
        let build = statistics.compute(join.left().as_ref(), &StatisticsArgs::new())?;
        let probe = statistics.compute(join.right().as_ref(), &StatisticsArgs::new())?;
        let size = |bytes: &Precision<usize>, rows: &Precision<usize>| match bytes.get_value() {
            Some(b) => Some((*b, true)),
            None => rows.get_value().map(|r| (*r, false)),
        };
        let (Some((build, build_in_bytes)), Some((probe, probe_in_bytes))) = (
            size(&build.total_byte_size, &build.num_rows),
            size(&probe.total_byte_size, &probe.num_rows),
        ) else {
            return Ok(false);
        };
        if build_in_bytes != probe_in_bytes || (build_in_bytes && build > MAX_BROADCAST_BYTES) {
            return Ok(false);
        }
        Ok(build.saturating_mul(self.executors) <= probe)
    }
}

/// Join types whose output needs no knowledge of build rows that no probe row matched: each
/// executor can join its share of the probe side with its own copy of the build side.
fn broadcastable(join: &HashJoinExec) -> bool {
    !join.null_aware
        && matches!(
            join.join_type(),
            JoinType::Inner | JoinType::Right | JoinType::RightSemi | JoinType::RightAnti
        )
}

impl PhysicalOptimizerRule for BroadcastJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.executors < 2 {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() != PartitionMode::Partitioned
                || !broadcastable(join)
                || co_partitioned(join)
                || !self.cheaper_to_broadcast(join)?
            {
                return Ok(Transformed::no(node));
            }
            let broadcast = join
                .builder()
                .with_partition_mode(PartitionMode::CollectLeft)
                .build_exec()?;
            Ok(Transformed::yes(broadcast))
        })
        .data()
    }

    fn name(&self) -> &str {
        "broadcast_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::common::NullEquality;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::col;

    fn table(name: &str, rows: i64) -> Arc<dyn ExecutionPlan> {
        let schema = Arc::new(Schema::new(vec![Field::new(name, DataType::Int64, false)]));
        let column = Arc::new(Int64Array::from_iter_values(0..rows));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column]).unwrap();
        MemorySourceConfig::try_new_exec(&[vec![batch]], schema, None).unwrap()
    }

    fn join(build_rows: i64, probe_rows: i64, join_type: JoinType) -> Arc<dyn ExecutionPlan> {
        let (build, probe) = (table("b", build_rows), table("p", probe_rows));
        let on = vec![(
            col("b", &build.schema()).unwrap(),
            col("p", &probe.schema()).unwrap(),
        )];
        Arc::new(
            HashJoinExec::try_new(
                build,
                probe,
                on,
                None,
                &join_type,
                None,
                PartitionMode::Partitioned,
                NullEquality::NullEqualsNothing,
                false,
            )
            .unwrap(),
        )
    }

    fn mode_after(executors: usize, plan: Arc<dyn ExecutionPlan>) -> PartitionMode {
        let optimized = BroadcastJoins::new(executors)
            .optimize(plan, &ConfigOptions::default())
            .unwrap();
        *optimized
            .downcast_ref::<HashJoinExec>()
            .unwrap()
            .partition_mode()
    }

    #[test]
    fn a_build_side_small_next_to_the_probe_side_is_broadcast() {
        let plan = join(1_000, 100_000, JoinType::Inner);
        assert_eq!(mode_after(3, plan), PartitionMode::CollectLeft);
    }

    #[test]
    fn a_build_side_that_would_cost_more_to_broadcast_stays_partitioned() {
        // 3 copies of 40K rows move more than shuffling the 100K-row probe side once.
        let plan = join(40_000, 100_000, JoinType::Inner);
        assert_eq!(mode_after(3, plan), PartitionMode::Partitioned);
    }

    #[test]
    fn joins_that_emit_unmatched_build_rows_are_not_broadcast() {
        for join_type in [JoinType::Left, JoinType::Full, JoinType::LeftAnti] {
            let plan = join(1_000, 100_000, join_type);
            assert_eq!(
                mode_after(3, plan),
                PartitionMode::Partitioned,
                "{join_type}"
            );
        }
    }

    #[test]
    fn one_executor_needs_no_broadcast() {
        let plan = join(1_000, 100_000, JoinType::Inner);
        assert_eq!(mode_after(1, plan), PartitionMode::Partitioned);
    }
}
