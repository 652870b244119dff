//! Errors on the wire: DataFusion errors become gRPC statuses with the right code and one
//! clear line of text, and statuses from peers become DataFusion errors again.

use std::fmt;

use datafusion::common::DataFusionError;
use datafusion::error::Result;
use tonic::{Code, Status};

/// An error that already knows its gRPC code (a missing table, a duplicate name, ...).
/// Carried inside `DataFusionError::External` so it survives DataFusion's error plumbing.
#[derive(Debug, Clone)]
pub struct CodedError {
    pub code: Code,
    pub message: String,
}

impl fmt::Display for CodedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for CodedError {}

/// Builds a `DataFusionError` with an explicit gRPC code.
pub fn coded(code: Code, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(CodedError {
        code,
        message: message.into(),
    }))
}

/// Shorthand for `Err(coded(code, message))`.
pub fn coded_err<T>(code: Code, message: impl Into<String>) -> Result<T> {
    Err(coded(code, message))
}

/// Maps a DataFusion error to a status whose code tells the client what kind of problem it is.
pub fn datafusion_to_status(err: &DataFusionError) -> Status {
    let (code, message) = classify(err);
    Status::new(code, message)
}

fn classify(err: &DataFusionError) -> (Code, String) {
    match err {
        DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
            classify(inner)
        }
        DataFusionError::Shared(inner) => classify(inner),
        DataFusionError::Collection(errs) if !errs.is_empty() => classify(&errs[0]),
        DataFusionError::External(e) => {
            if let Some(coded) = e.downcast_ref::<CodedError>() {
                return (coded.code, coded.message.clone());
            }
            if let Some(status) = e.downcast_ref::<Status>() {
                return (status.code(), status.message().to_string());
            }
            if let Some(inner) = e.downcast_ref::<DataFusionError>() {
                return classify(inner);
            }
            (Code::Internal, one_line(&e.to_string()))
        }
        DataFusionError::SQL(e, _) => (Code::InvalidArgument, format!("SQL error: {e}")),
        DataFusionError::Plan(msg) => (plan_code(msg), one_line(msg)),
        DataFusionError::SchemaError(..) => (Code::InvalidArgument, one_line(&message_of(err))),
        DataFusionError::NotImplemented(msg) => (
            Code::Unimplemented,
            format!("not supported: {}", one_line(msg)),
        ),
        DataFusionError::ResourcesExhausted(msg) => (Code::ResourceExhausted, one_line(msg)),
        DataFusionError::ArrowError(e, _) => match e.as_ref() {
            arrow::error::ArrowError::CastError(_)
            | arrow::error::ArrowError::ParseError(_)
            | arrow::error::ArrowError::InvalidArgumentError(_)
            | arrow::error::ArrowError::DivideByZero
            | arrow::error::ArrowError::ArithmeticOverflow(_)
            | arrow::error::ArrowError::ComputeError(_) => {
                (Code::InvalidArgument, one_line(&message_of(err)))
            }
            arrow::error::ArrowError::ExternalError(inner) => {
                if let Some(status) = inner.downcast_ref::<Status>() {
                    (status.code(), status.message().to_string())
                } else {
                    (Code::Internal, one_line(&message_of(err)))
                }
            }
            _ => (Code::Internal, one_line(&message_of(err))),
        },
        DataFusionError::Execution(msg) if msg.contains("but schema specifies non-nullable") => (
            Code::InvalidArgument,
            format!(
                "a NULL value went into a NOT NULL column ({})",
                one_line(msg)
            ),
        ),
        DataFusionError::Execution(msg) => (execution_code(msg), one_line(msg)),
        DataFusionError::Configuration(msg) => (Code::InvalidArgument, one_line(msg)),
        _ => (Code::Internal, one_line(&message_of(err))),
    }
}

fn plan_code(msg: &str) -> Code {
    if msg.contains("not found") && msg.starts_with("table") {
        Code::NotFound
    } else if msg.contains("already exists") {
        Code::AlreadyExists
    } else {
        Code::InvalidArgument
    }
}

fn execution_code(msg: &str) -> Code {
    if msg.contains("does not support") {
        return Code::Unimplemented;
    }
    // Execution errors that come from user data (bad casts, division by zero) are the user's
    // to fix; everything else is ours.
    let lower = msg.to_ascii_lowercase();
    if ["cast", "divide by zero", "overflow", "more than one row"]
        .iter()
        .any(|word| lower.contains(word))
    {
        Code::InvalidArgument
    } else {
        Code::Internal
    }
}

fn message_of(err: &DataFusionError) -> String {
    err.clone_message()
}

/// The first line of a message, without DataFusion's backtrace.
fn one_line(msg: &str) -> String {
    let msg = msg.split("\n\nbacktrace").next().unwrap_or(msg);
    msg.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

trait CloneMessage {
    fn clone_message(&self) -> String;
}

impl CloneMessage for DataFusionError {
    fn clone_message(&self) -> String {
        self.strip_backtrace()
            .trim_start_matches("Error during planning: ")
            .trim_start_matches("Schema error: ")
            .trim_start_matches("Arrow error: ")
            .to_string()
    }
}

/// A status from a peer as a DataFusion error that keeps its code.
pub fn status_to_datafusion(status: Status) -> DataFusionError {
    coded(status.code(), status.message().to_string())
}

/// Whether a status means the peer could not be reached (worth trying another replica).
pub fn is_unreachable(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::common::plan_datafusion_err;

    #[test]
    fn codes_follow_the_kind_of_problem() {
        let missing = plan_datafusion_err!("table 'shoal.public.nope' not found");
        assert_eq!(datafusion_to_status(&missing).code(), Code::NotFound);
        let exists = coded(Code::AlreadyExists, "table 't' already exists");
        let status = datafusion_to_status(&exists);
        assert_eq!(status.code(), Code::AlreadyExists);
        assert_eq!(status.message(), "table 't' already exists");
        let ctx = DataFusionError::Context("while planning".into(), Box::new(exists));
        assert_eq!(datafusion_to_status(&ctx).code(), Code::AlreadyExists);
        let oom = DataFusionError::ResourcesExhausted("memory".into());
        assert_eq!(datafusion_to_status(&oom).code(), Code::ResourceExhausted);
    }
}
