//! `shoal sql`: the interactive SQL client (REPL) and the `-c`/`-f` script runner.
//!
//! Talks Flight SQL to any coordinator: each statement goes out as a `CommandStatementQuery`,
//! and the batches of every endpoint of the returned `FlightInfo` are printed as a table, CSV
//! or JSON lines. Errors print as one `ERROR: <message>` line: the REPL prints statement errors
//! itself; `run`/`repl` return the error that ends them for the caller (`main`) to print.

pub mod client;
pub mod errors;
mod failover;
mod meta_commands;
mod render;
mod repl;
mod session;
mod spinner;
mod splitter;

use std::fmt;
use std::path::Path;

use client::Credentials;
use session::Session;

/// Arguments of `shoal sql`.
#[derive(clap::Args, Debug, Clone)]
pub struct SqlArgs {
    /// Flight SQL endpoint of any coordinator, or several separated by commas: when one is
    /// lost the session moves to the next and runs read-only statements again there
    #[arg(long, default_value = "grpc://127.0.0.1:50051", env = "SHOAL_URL")]
    pub url: String,
    /// Run one statement (or several separated by `;`) and exit
    #[arg(short = 'c', long = "command", conflicts_with = "file")]
    pub command: Option<String>,
    /// Run the statements in FILE (`-` for stdin) and exit
    #[arg(short = 'f', long = "file")]
    pub file: Option<std::path::PathBuf>,
    /// Output format: an aligned table, CSV with a header line, or JSON lines (one object per
    /// row). With csv/json the `(N rows, T s)` line goes to stderr, and only on a terminal
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// User name sent with --password
    #[arg(long, default_value = "shoal", env = "SHOAL_USER")]
    pub user: String,
    /// Password, for coordinators started with --flight-password
    #[arg(long, env = "SHOAL_PASSWORD")]
    pub password: Option<String>,
}

impl SqlArgs {
    fn credentials(&self) -> Option<Credentials> {
        self.password.as_ref().map(|password| Credentials {
            user: self.user.clone(),
            password: password.clone(),
        })
    }
}

/// How results are printed.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputFormat {
    /// Aligned table followed by `(N rows, T s)`
    Table,
    /// CSV with a header line
    Csv,
    /// JSON lines: one object per row
    Json,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The error `run`/`repl` end with: a connection failure or the first failing statement of a
/// script, already one clean line. The caller prints it as `ERROR: {e}` and exits with 1;
/// errors of single statements in the REPL are printed by the REPL itself and never end it.
#[derive(Debug)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

fn fail(message: impl fmt::Display) -> BoxError {
    Box::new(CliError(message.to_string()))
}

/// Runs `shoal sql`: non-interactive with -c/-f (stops at the first failing statement and
/// returns it as `Err`: the caller prints `ERROR: {e}` and exits with status 1), else the REPL.
pub async fn run(args: SqlArgs) -> Result<(), BoxError> {
    let script = match (&args.command, &args.file) {
        (Some(command), _) => Some(command.clone()),
        (None, Some(path)) => Some(read_script(path).map_err(fail)?),
        (None, None) => None,
    };
    let credentials = args.credentials();
    match script {
        Some(script) => run_script(&args.url, args.format, credentials, &script).await,
        None => repl(&args.url, args.format, credentials).await,
    }
}

/// The REPL against an already-known URL (also used by `shoal demo` after it starts the cluster).
/// `Err` only when it cannot connect or cannot read the terminal.
pub async fn repl(
    url: &str,
    format: OutputFormat,
    credentials: Option<Credentials>,
) -> Result<(), BoxError> {
    let session = Session::connect(url, format, credentials)
        .await
        .map_err(fail)?;
    repl::run_repl(session, url).await.map_err(fail)
}

/// Runs every statement of `script` in order, stopping at the first error.
async fn run_script(
    url: &str,
    format: OutputFormat,
    credentials: Option<Credentials>,
    script: &str,
) -> Result<(), BoxError> {
    let statements = splitter::split_statements(script);
    if statements.is_empty() {
        return Ok(());
    }
    let mut session = Session::connect(url, format, credentials)
        .await
        .map_err(fail)?;
    for statement in &statements {
        session.run_sql(statement).await.map_err(fail)?;
    }
    Ok(())
}

fn read_script(path: &Path) -> Result<String, String> {
    let read = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| format!("cannot read {}: {e}", path.display()))
}
