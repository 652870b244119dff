//! Errors as Postgres clients expect them: an ErrorResponse with the SQLSTATE a driver
//! branches on (42P01 for a missing table, 42601 for bad syntax, ...) and the same readable
//! message Flight SQL clients get.

use datafusion::common::DataFusionError;
use pgwire::error::{ErrorInfo, PgWireError};
use shoal_flight::error::datafusion_to_status;
use tonic::Code;

/// `error` as a Postgres error with its SQLSTATE.
pub fn pg_error(error: &DataFusionError) -> PgWireError {
    PgWireError::UserError(Box::new(error_info(error)))
}

pub fn error_info(error: &DataFusionError) -> ErrorInfo {
    let status = datafusion_to_status(error);
    let message = status.message().to_string();
    let code = sqlstate(error.find_root(), status.code(), &message);
    ErrorInfo::new("ERROR".to_string(), code.to_string(), message)
}

/// The SQLSTATE for an error of `root` cause that Flight SQL reports with `code`.
fn sqlstate(root: &DataFusionError, code: Code, message: &str) -> &'static str {
    let lower = message.to_ascii_lowercase();
    match (root, code) {
        (DataFusionError::SQL(..), _) => "42601",
        (DataFusionError::SchemaError(..), _)
            if lower.contains("field named") || lower.contains("column") =>
        {
            "42703"
        }
        (_, Code::NotFound) if lower.contains("schema") => "3F000",
        (_, Code::NotFound) if lower.contains("column") => "42703",
        (_, Code::NotFound) => "42P01",
        (_, Code::AlreadyExists) => "42P07",
        (_, Code::Unimplemented) => "0A000",
        (_, Code::ResourceExhausted) => "53200",
        (_, Code::Cancelled) => "57014",
        (_, Code::DeadlineExceeded) => "57014",
        (_, Code::Unavailable) => "57P03",
        (_, Code::Aborted) => "40001",
        (_, Code::InvalidArgument) => invalid_argument(root, &lower),
        _ => "XX000",
    }
}

fn invalid_argument(root: &DataFusionError, lower: &str) -> &'static str {
    if lower.contains("divide by zero") || lower.contains("division by zero") {
        "22012"
    } else if lower.contains("not null") {
        "23502"
    } else if lower.contains("overflow") {
        "22003"
    } else if lower.contains("more than one row") {
        "21000"
    } else if lower.contains("cast") || lower.contains("parse") {
        "22P02"
    } else if lower.contains("not found") && lower.contains("function") {
        "42883"
    } else if matches!(
        root,
        DataFusionError::Plan(_) | DataFusionError::SchemaError(..)
    ) {
        "42000"
    } else {
        "22000"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::plan_datafusion_err;
    use shoal_flight::error::coded;

    fn state_of(error: DataFusionError) -> String {
        error_info(&error).code
    }

    #[test]
    fn errors_carry_the_sqlstate_drivers_branch_on() {
        assert_eq!(
            state_of(coded(Code::NotFound, "table 't' does not exist")),
            "42P01"
        );
        assert_eq!(
            state_of(coded(Code::AlreadyExists, "table 't' already exists")),
            "42P07"
        );
        assert_eq!(
            state_of(DataFusionError::SQL(
                Box::new(
                    datafusion::sql::sqlparser::parser::ParserError::ParserError(
                        "Expected: an expression".into()
                    )
                ),
                None
            )),
            "42601"
        );
        assert_eq!(
            state_of(DataFusionError::ArrowError(
                Box::new(arrow::error::ArrowError::DivideByZero),
                None
            )),
            "22012"
        );
        assert_eq!(
            state_of(plan_datafusion_err!("Cannot infer common type")),
            "42000"
        );
        assert_eq!(state_of(DataFusionError::Internal("bug".into())), "XX000");
    }
}
