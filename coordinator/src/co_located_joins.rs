//! `CoLocatedJoins`: a hash join whose inputs are already hash-partitioned on its keys in the
//! same number of partitions (tables distributed on the join key with the same shard count)
//! joins partition by partition, instead of broadcasting its smaller input as DataFusion's
//! size-based choice would. Runs right after DataFusion's `JoinSelection`.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_expr::{Distribution, Partitioning, PhysicalExprRef};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

#[derive(Debug, Default)]
pub struct CoLocatedJoins;

impl PhysicalOptimizerRule for CoLocatedJoins {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else {
                return Ok(Transformed::no(node));
            };
            if *join.partition_mode() == PartitionMode::Partitioned || !co_partitioned(join) {
                return Ok(Transformed::no(node));
            }
            let partitioned = join
                .builder()
                .with_partition_mode(PartitionMode::Partitioned)
                .build_exec()?;
            Ok(Transformed::yes(partitioned))
        })
        .data()
    }

    fn name(&self) -> &str {
        "co_located_joins"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Both inputs hash-partitioned on their side of the join keys, into the same partition count.
pub(crate) fn co_partitioned(join: &HashJoinExec) -> bool {
    let (left, right) = (join.left(), join.right());
    let (Partitioning::Hash(_, l), Partitioning::Hash(_, r)) =
        (left.output_partitioning(), right.output_partitioning())
    else {
        return false;
    };
    if l != r || *l < 2 {
        return false;
    }
    let keys = |pick: fn(&(PhysicalExprRef, PhysicalExprRef)) -> PhysicalExprRef| {
        Distribution::KeyPartitioned(join.on().iter().map(pick).collect())
    };
    let left_keys = keys(|(l, _)| Arc::clone(l));
    let right_keys = keys(|(_, r)| Arc::clone(r));
    left.output_partitioning()
        .satisfaction(&left_keys, left.equivalence_properties(), false)
        .is_satisfied()
        && right
            .output_partitioning()
            .satisfaction(&right_keys, right.equivalence_properties(), false)
            .is_satisfied()
}
