//! `CheckedScalarSubqueries`: an uncorrelated scalar subquery that may return more than one row
//! fails like it does on single-node DataFusion instead of repeating the outer rows.
//!
//! Distributed plans run such a subquery as a join (datafusion-distributed turns off
//! DataFusion's `ScalarSubqueryExec`, whose result cannot cross stages), and a join does not
//! count rows. This analyzer rule rewrites `(subquery)` to
//! `(SELECT shoal_single_row(count(*), first_value(x)) FROM (subquery))`: one row always, the
//! value when the subquery had at most one, the single-node error otherwise. Subqueries that
//! cannot return more than one row (an aggregate without GROUP BY, `LIMIT 1`) are left alone.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Column, Result};
use datafusion::functions_aggregate::count::count_all;
use datafusion::functions_aggregate::expr_fn::first_value;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Subquery, col};
use datafusion::optimizer::AnalyzerRule;
use shoal_flight::single_row_udf::single_row_udf;

const COUNT: &str = "__shoal_subquery_rows";
const VALUE: &str = "__shoal_subquery_value";

#[derive(Debug, Default)]
pub struct CheckedScalarSubqueries;

impl AnalyzerRule for CheckedScalarSubqueries {
    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|node| {
            node.map_expressions(|expr| {
                expr.transform_up(|expr| match expr {
                    Expr::ScalarSubquery(subquery)
                        if subquery.outer_ref_columns.is_empty()
                            && subquery.subquery.max_rows().is_none_or(|rows| rows > 1) =>
                    {
                        Ok(Transformed::yes(Expr::ScalarSubquery(checked(subquery)?)))
                    }
                    other => Ok(Transformed::no(other)),
                })
            })
        })
        .data()
    }

    fn name(&self) -> &str {
        "checked_scalar_subqueries"
    }
}

fn checked(subquery: Subquery) -> Result<Subquery> {
    let inner = Arc::unwrap_or_clone(subquery.subquery);
    let (qualifier, field) = inner.schema().qualified_field(0);
    let name = field.name().clone();
    let value = Expr::Column(Column::new(qualifier.cloned(), field.name()));
    let plan = LogicalPlanBuilder::from(inner)
        .aggregate(
            Vec::<Expr>::new(),
            vec![
                count_all().alias(COUNT),
                first_value(value, vec![]).alias(VALUE),
            ],
        )?
        .project(vec![
            single_row_udf()
                .call(vec![col(COUNT), col(VALUE)])
                .alias(name),
        ])?
        .build()?;
    Ok(Subquery {
        subquery: Arc::new(plan),
        ..subquery
    })
}
