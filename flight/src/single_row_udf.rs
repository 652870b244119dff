//! `shoal_single_row(count, value)`: `value`, or the error single-node DataFusion gives when a
//! scalar subquery returns more than one row.
//!
//! Distributed plans turn uncorrelated scalar subqueries into joins, which repeat outer rows
//! instead of failing; the coordinator wraps such a subquery as
//! `SELECT shoal_single_row(count(*), first_value(x)) FROM (subquery)` so the check runs
//! wherever the subquery does. Coordinator and executors both register this function.

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

pub const SINGLE_ROW_FUNCTION: &str = "shoal_single_row";

/// The function, ready to register.
pub fn single_row_udf() -> Arc<ScalarUDF> {
    Arc::new(ScalarUDF::new_from_impl(SingleRow::default()))
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct SingleRow {
    signature: Signature,
}

impl Default for SingleRow {
    fn default() -> Self {
        Self {
            signature: Signature::any(2, Volatility::Immutable),
        }
    }
}

impl ScalarUDFImpl for SingleRow {
    fn name(&self) -> &str {
        SINGLE_ROW_FUNCTION
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [DataType::Int64, value] => Ok(value.clone()),
            other => plan_err!("{SINGLE_ROW_FUNCTION} expects (Int64, any), got {other:?}"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let [count, value] = args.args.as_slice() else {
            return exec_err!("{SINGLE_ROW_FUNCTION} expects 2 arguments");
        };
        let too_many = match count {
            ColumnarValue::Scalar(scalar) => {
                matches!(scalar, datafusion::common::ScalarValue::Int64(Some(n)) if *n > 1)
            }
            ColumnarValue::Array(array) => {
                let counts = array.as_primitive::<Int64Type>();
                (0..counts.len()).any(|i| counts.is_valid(i) && counts.value(i) > 1)
            }
        };
        if too_many {
            return exec_err!("Scalar subquery returned more than one row");
        }
        Ok(value.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{ArrayRef, Int64Array};
    use arrow::datatypes::Field;
    use datafusion::common::config::ConfigOptions;

    fn call(count: i64, value: i64) -> Result<ColumnarValue> {
        let args = vec![
            ColumnarValue::Array(Arc::new(Int64Array::from(vec![count])) as ArrayRef),
            ColumnarValue::Array(Arc::new(Int64Array::from(vec![value])) as ArrayRef),
        ];
        single_row_udf().invoke_with_args(ScalarFunctionArgs {
            args,
            arg_fields: vec![
                Arc::new(Field::new("n", DataType::Int64, false)),
                Arc::new(Field::new("v", DataType::Int64, true)),
            ],
            number_rows: 1,
            return_field: Arc::new(Field::new("v", DataType::Int64, true)),
            config_options: Arc::new(ConfigOptions::default()),
        })
    }

    #[test]
    fn zero_or_one_row_passes_the_value_through() {
        for count in [0, 1] {
            let ColumnarValue::Array(out) = call(count, 7).unwrap() else {
                panic!("array in, array out");
            };
            assert_eq!(out.as_primitive::<Int64Type>().value(0), 7);
        }
    }

    #[test]
    fn more_than_one_row_is_the_single_node_error() {
        let err = call(2, 7).unwrap_err().to_string();
        assert_eq!(
            err,
            "Execution error: Scalar subquery returned more than one row"
        );
    }
}
