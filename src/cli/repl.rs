//! The interactive loop: read lines with history, gather statements, run them, handle `\` commands.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use rustyline::DefaultEditor;
use rustyline::error::ReadlineError;

use super::meta_commands::{self, MetaCommand};
use super::session::Session;
use super::splitter::StatementSplitter;

const PROMPT: &str = "shoal> ";
const CONTINUATION_PROMPT: &str = "    -> ";
const HISTORY_FILE: &str = ".shoal_history";

/// What the loop does after a line.
enum Next {
    Continue,
    Quit,
}

/// Runs the REPL until `\q` or Ctrl-D. Errors of single statements are printed and the loop goes
/// on; only a broken terminal ends it early with `Err`.
pub async fn run_repl(mut session: Session, url: &str) -> Result<(), String> {
    let mut editor = DefaultEditor::new().map_err(|e| format!("cannot open the terminal: {e}"))?;
    let history = history_path();
    if let Some(path) = &history {
        // A missing history file is normal on first use.
        let _ = editor.load_history(path);
    }
    // Piped input (`echo 'select 1;' | shoal sql`) should produce only results.
    let interactive = std::io::stdin().is_terminal();
    if interactive {
        let _ = writeln!(
            std::io::stdout(),
            "Connected to {url}. Statements end with `;`; \\? for help, \\q to quit."
        );
    }

    let mut splitter = StatementSplitter::new();
    let mut editor = Some(editor);
    let outcome = loop {
        let prompt = if splitter.is_empty() {
            PROMPT
        } else {
            CONTINUATION_PROMPT
        };
        let (returned, line) = read_line(editor.take(), prompt).await;
        editor = returned;
        match line {
            Ok(line) => {
                if let Some(editor) = editor.as_mut()
                    && !line.trim().is_empty()
                {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if let Next::Quit = handle_line(&mut session, &mut splitter, &line).await {
                    break Ok(());
                }
            }
            // Ctrl-C at the prompt abandons the statement being typed, like psql.
            Err(ReadlineError::Interrupted) => splitter.clear(),
            Err(ReadlineError::Eof) => {
                // A script piped in may omit the final `;`; a person pressing Ctrl-D is leaving.
                if !interactive && let Some(statement) = splitter.finish() {
                    report(run_cancellable(session.run_sql(&statement)).await);
                }
                break Ok(());
            }
            Err(e) => break Err(format!("cannot read input: {e}")),
        }
    };
    if let (Some(editor), Some(path)) = (editor.as_mut(), &history) {
        let _ = editor.save_history(path);
    }
    outcome
}

fn history_path() -> Option<PathBuf> {
    dirs::home_dir().map(|home| home.join(HISTORY_FILE))
}

/// rustyline blocks the thread, so it runs on the blocking pool; the editor travels there and
/// back by value. `None` in, or a lost editor, reads as end of input.
async fn read_line(
    editor: Option<DefaultEditor>,
    prompt: &'static str,
) -> (Option<DefaultEditor>, Result<String, ReadlineError>) {
    let Some(mut editor) = editor else {
        return (None, Err(ReadlineError::Eof));
    };
    let joined = tokio::task::spawn_blocking(move || {
        let line = editor.readline(prompt);
        (editor, line)
    })
    .await;
    match joined {
        Ok((editor, line)) => (Some(editor), line),
        Err(e) => (
            None,
            Err(ReadlineError::Io(std::io::Error::other(e.to_string()))),
        ),
    }
}

async fn handle_line(session: &mut Session, splitter: &mut StatementSplitter, line: &str) -> Next {
    // Backslash commands are only recognised at the start of a statement, so a line inside a
    // multi-line string literal is never mistaken for one.
    if splitter.is_empty()
        && let Some(command) = MetaCommand::parse(line)
    {
        splitter.clear();
        return run_meta_command(session, command).await;
    }
    for statement in splitter.push(&format!("{line}\n")) {
        report(run_cancellable(session.run_sql(&statement)).await);
    }
    Next::Continue
}

async fn run_meta_command(session: &mut Session, command: MetaCommand) -> Next {
    match command {
        MetaCommand::ListTables => {
            report(run_cancellable(session.list_tables(meta_commands::list_tables_sql())).await);
        }
        MetaCommand::Describe(table) => {
            let sql = meta_commands::describe_sql(&table);
            report(run_cancellable(session.run_buffered(&sql)).await);
        }
        MetaCommand::ToggleTiming => {
            session.timing = !session.timing;
            let state = if session.timing { "on" } else { "off" };
            let _ = writeln!(std::io::stdout(), "Timing is {state}.");
        }
        MetaCommand::Quit => return Next::Quit,
        MetaCommand::Help => {
            let _ = writeln!(std::io::stdout(), "{}", meta_commands::HELP);
        }
        MetaCommand::Unknown(text) => {
            report(Err(format!(
                "unknown command {text} (\\? lists the commands)"
            )));
        }
    }
    Next::Continue
}

/// Runs a statement until it finishes or the user presses Ctrl-C. Dropping the future drops the
/// gRPC streams, which cancels the query on the server.
async fn run_cancellable(
    statement: impl std::future::Future<Output = Result<(), String>>,
) -> Result<(), String> {
    tokio::select! {
        outcome = statement => outcome,
        _ = tokio::signal::ctrl_c() => Err("query cancelled".to_string()),
    }
}

fn report(outcome: Result<(), String>) {
    if let Err(message) = outcome {
        eprintln!("ERROR: {message}");
    }
}
