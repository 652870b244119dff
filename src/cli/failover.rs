//! Several coordinators behind one `--url a,b,c`: connect to the first that answers, and move
//! to the next when the current one is lost. Only read-only statements are run again there;
//! a write that lost its coordinator may or may not have happened, so it is reported instead.

use std::error::Error;

use super::client::{ConnectError, Credentials, SqlClient};
use super::errors;

/// The coordinators a session may use, and which one it uses now.
pub struct Coordinators {
    urls: Vec<String>,
    current: usize,
    credentials: Option<Credentials>,
}

impl Coordinators {
    /// `url` is one URL or several separated by commas.
    pub fn parse(url: &str) -> Self {
        let urls: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_string)
            .collect();
        let urls = if urls.is_empty() {
            vec![url.to_string()]
        } else {
            urls
        };
        Self {
            urls,
            current: 0,
            credentials: None,
        }
    }

    /// Authenticates with `credentials` on every coordinator.
    pub fn with_credentials(mut self, credentials: Option<Credentials>) -> Self {
        self.credentials = credentials;
        self
    }

    pub fn len(&self) -> usize {
        self.urls.len()
    }

    pub fn current_url(&self) -> &str {
        &self.urls[self.current]
    }

    /// Connects to the first coordinator that answers, starting after the current one when
    /// `skip_current`; reports the last failure if none does.
    pub async fn connect(&mut self, skip_current: bool) -> Result<SqlClient, ConnectError> {
        let start = if skip_current { 1 } else { 0 };
        let mut last_error = None;
        for step in start..self.urls.len() + start {
            let index = (self.current + step) % self.urls.len();
            if skip_current && index == self.current && self.urls.len() > 1 {
                continue;
            }
            match SqlClient::connect(&self.urls[index], self.credentials.as_ref()).await {
                Ok(client) => {
                    self.current = index;
                    return Ok(client);
                }
                Err(e) => last_error = Some(e),
            }
        }
        Err(last_error.expect("at least one URL"))
    }
}

/// Whether `sql` only reads, so running it again elsewhere cannot change data twice.
pub fn is_read_only(sql: &str) -> bool {
    let mut words = sql
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| c.is_whitespace() || c == '(')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase);
    match words.next().as_deref() {
        Some("select" | "values" | "show" | "describe" | "desc" | "table") => true,
        // EXPLAIN ANALYZE runs the statement; plain EXPLAIN only plans it.
        Some("explain") => !words.any(|w| w == "analyze"),
        // A CTE may end in INSERT; read-only only if no data-changing keyword appears.
        Some("with") => !words.any(|w| {
            matches!(
                w.as_str(),
                "insert" | "update" | "delete" | "copy" | "create" | "drop"
            )
        }),
        _ => false,
    }
}

/// Whether `err` means the coordinator went away or cannot serve right now (UNAVAILABLE,
/// or the connection broke), as opposed to an answer about the statement itself.
pub fn coordinator_lost(err: &(dyn Error + 'static)) -> bool {
    let mut current: Option<&(dyn Error + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(status) = errors::as_status(e) {
            return match status.code() {
                tonic::Code::Unavailable => true,
                tonic::Code::Unknown | tonic::Code::Internal => {
                    let message = status.message();
                    message.contains("transport error")
                        || message.contains("connection")
                        || message.contains("broken pipe")
                }
                _ => false,
            };
        }
        if e.downcast_ref::<std::io::Error>().is_some() {
            return true;
        }
        current = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_statements() {
        for sql in [
            "SELECT 1",
            "  (select * from t)",
            "with a as (select 1) select * from a",
            "EXPLAIN SELECT 1",
            "show tables",
            "VALUES (1)",
        ] {
            assert!(is_read_only(sql), "{sql}");
        }
        for sql in [
            "INSERT INTO t VALUES (1)",
            "explain analyze insert into t values (1)",
            "EXPLAIN ANALYZE SELECT 1",
            "create table t (a int)",
            "with a as (select 1) insert into t select * from a",
            "COPY t FROM 'x.csv'",
            "",
        ] {
            assert!(!is_read_only(sql), "{sql}");
        }
    }

    #[test]
    fn urls_split_on_commas() {
        let c = Coordinators::parse("grpc://a:1, grpc://b:2,,");
        assert_eq!(c.len(), 2);
        assert_eq!(c.current_url(), "grpc://a:1");
    }

    #[test]
    fn unavailable_means_lost_but_bad_sql_does_not() {
        let lost = arrow_flight::error::FlightError::Tonic(Box::new(tonic::Status::unavailable(
            "catalog unavailable",
        )));
        assert!(coordinator_lost(&lost));
        let bad = arrow_flight::error::FlightError::Tonic(Box::new(
            tonic::Status::invalid_argument("syntax error"),
        ));
        assert!(!coordinator_lost(&bad));
    }
}
