//! Turns client-side errors into the one line a user should see after `ERROR: `.
//!
//! arrow-flight wraps a server's `tonic::Status` in several layers (`FlightError::Tonic`,
//! `ArrowError::ExternalError`, ...) whose `Display` adds prefixes such as `Tonic error: ` and
//! `code: 'Internal error', message: "..."`. The user only cares about the server's message, so
//! we look for the `Status` in the error's source chain first and fall back to unwrapping the
//! text when an error arrives already stringified (e.g. inside `ArrowError::IpcError`).

use std::error::Error;

/// Prefixes that wrappers put in front of the message they wrap; they never carry information.
const NOISE_PREFIXES: &[&str] = &[
    "External error: ",
    "Tonic error: ",
    "Arrow error: ",
    "Ipc error: ",
    "Flight error: ",
    "Protocol error: ",
    "Error: ",
];

/// The longest header (`status: Internal, ` ...) we accept in front of `message: "`; anything
/// longer is probably a real message that merely mentions the word.
const MAX_STATUS_HEADER_LEN: usize = 80;

/// The message for `ERROR: <message>`, one line, with transport and wrapper noise removed.
pub fn error_message(err: &(dyn Error + 'static)) -> String {
    let mut current: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(status) = as_status(e) {
            return status_message(status);
        }
        current = e.source();
    }
    clean_message(&describe_chain(&err.to_string(), err.source()))
}

/// `FlightError::Tonic` holds a `Box<Status>` and hands out the box itself as its source, so
/// both shapes must be recognised.
pub(super) fn as_status<'a>(e: &'a (dyn Error + 'static)) -> Option<&'a tonic::Status> {
    if let Some(status) = e.downcast_ref::<tonic::Status>() {
        return Some(status);
    }
    if let Some(status) = e.downcast_ref::<Box<tonic::Status>>() {
        return Some(status);
    }
    match e.downcast_ref::<arrow_flight::error::FlightError>() {
        Some(arrow_flight::error::FlightError::Tonic(status)) => Some(status),
        _ => None,
    }
}

/// The message of a status, plus its transport-level causes when the status has any (tonic puts
/// a bare "transport error" in the message and the useful part in the source chain).
pub fn status_message(status: &tonic::Status) -> String {
    let head = if status.message().trim().is_empty() {
        status.code().description().to_string()
    } else {
        status.message().to_string()
    };
    clean_message(&describe_chain(&head, status.source()))
}

/// `head: cause: cause ...`, skipping causes whose text the line already contains (wrappers
/// often repeat their source in their own `Display`).
pub fn describe_chain(head: &str, mut source: Option<&(dyn Error + 'static)>) -> String {
    let mut line = head.to_string();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
        source = cause.source();
    }
    line
}

/// Removes wrapper prefixes and `status: ..., message: "...", details: ...` framing (possibly
/// nested), then folds the result onto one line.
pub fn clean_message(raw: &str) -> String {
    let mut text = raw.trim().to_string();
    loop {
        let before = text.clone();
        text = strip_noise_prefixes(&text).to_string();
        if let Some(inner) = extract_status_message(&text) {
            text = inner;
        }
        if text == before {
            break;
        }
    }
    one_line(&text)
}

fn strip_noise_prefixes(mut text: &str) -> &str {
    while let Some(rest) = NOISE_PREFIXES
        .iter()
        .find_map(|prefix| text.strip_prefix(prefix))
    {
        text = rest.trim_start();
    }
    text
}

/// Finds `message: "<debug-escaped text>"` right after a short status header such as
/// `status: Internal, `, `code: 'Internal error', `, `Status { code: Internal, ` or `Error, `
/// and returns the unescaped text.
fn extract_status_message(text: &str) -> Option<String> {
    const MARKER: &str = "message: \"";
    let start = text.find(MARKER)?;
    let header = &text[..start];
    let looks_like_header = header.len() <= MAX_STATUS_HEADER_LEN
        && header
            .chars()
            .all(|c| c.is_alphanumeric() || " _:,'{(".contains(c));
    if !looks_like_header {
        return None;
    }
    unescape_debug_string(&text[start + MARKER.len()..])
}

/// Reads a Rust `{:?}`-escaped string body up to its closing quote.
fn unescape_debug_string(body: &str) -> Option<String> {
    let mut out = String::new();
    let mut chars = body.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return Some(out),
            '\\' => match chars.next()? {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '0' => out.push('\0'),
                'u' => {
                    // `\u{XXXX}`
                    if chars.next()? != '{' {
                        return None;
                    }
                    let hex: String = chars.by_ref().take_while(|&c| c != '}').collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                }
                other => out.push(other),
            },
            other => out.push(other),
        }
    }
    None
}

/// Multi-line server errors (DataFusion adds context lines) become one line.
fn one_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    if lines.is_empty() {
        "unknown error".to_string()
    } else {
        lines.join(" ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::error::ArrowError;
    use arrow_flight::error::FlightError;

    #[test]
    fn status_inside_flight_error_gives_its_message() {
        let err = FlightError::Tonic(Box::new(tonic::Status::internal(
            "Error during planning: table 'nope' not found",
        )));
        assert_eq!(
            error_message(&err),
            "Error during planning: table 'nope' not found"
        );
    }

    #[test]
    fn status_nested_in_arrow_external_error_is_found() {
        let flight = FlightError::Tonic(Box::new(tonic::Status::invalid_argument("bad SQL")));
        let err = ArrowError::ExternalError(Box::new(flight));
        assert_eq!(error_message(&err), "bad SQL");
    }

    #[test]
    fn empty_status_message_falls_back_to_code_description() {
        let err = FlightError::Tonic(Box::new(tonic::Status::unavailable("")));
        assert_eq!(error_message(&err), tonic::Code::Unavailable.description());
    }

    #[test]
    fn stringified_status_in_ipc_error_is_unwrapped() {
        let status = tonic::Status::internal("Execution error: division by zero");
        let err = ArrowError::IpcError(format!("Tonic error: {status}"));
        assert_eq!(error_message(&err), "Execution error: division by zero");
    }

    #[test]
    fn old_tonic_status_format_with_details_is_unwrapped() {
        let raw = r#"Flight error: status: Internal, message: "Schema error: No field named \"x\"", details: [], metadata: MetadataMap { headers: {} }"#;
        assert_eq!(clean_message(raw), r#"Schema error: No field named "x""#);
    }

    #[test]
    fn debug_formatted_status_is_unwrapped() {
        let raw =
            r#"Ipc error: Status { code: Internal, message: "boom\nsecond line", source: None }"#;
        assert_eq!(clean_message(raw), "boom second line");
    }

    #[test]
    fn error_comma_message_wrapper_is_unwrapped() {
        let raw = r#"External error: Error, message: "table exists: t", details: []"#;
        assert_eq!(clean_message(raw), "table exists: t");
    }

    #[test]
    fn nested_wrappers_are_all_removed() {
        let inner = tonic::Status::internal("deep");
        let raw = format!("External error: Tonic error: {inner}");
        let outer = tonic::Status::internal(raw);
        assert_eq!(clean_message(&format!("Arrow error: {outer}")), "deep");
    }

    #[test]
    fn message_mentioning_message_is_left_alone() {
        let raw = r#"column "message: \"x\"" of a very long descriptive error text that is surely not a status header at all"#;
        assert_eq!(clean_message(raw), raw);
    }

    #[test]
    fn plain_messages_are_kept_and_folded_onto_one_line() {
        assert_eq!(
            clean_message("  syntax error\n  at line 2  \n"),
            "syntax error at line 2"
        );
        assert_eq!(clean_message(""), "unknown error");
    }

    #[test]
    fn unicode_escapes_are_decoded() {
        assert_eq!(clean_message(r#"code: 'x', message: "caf\u{e9}""#), "café");
    }

    #[test]
    fn chain_skips_causes_already_in_the_line() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let err = ArrowError::IoError("read failed: refused".to_string(), io);
        assert_eq!(error_message(&err), "Io error: read failed: refused");
    }
}
