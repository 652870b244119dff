//! Backslash commands of the REPL (`\d`, `\timing`, `\q`, ...), psql style.

/// A parsed backslash command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MetaCommand {
    /// `\d`: list tables.
    ListTables,
    /// `\d NAME`: describe one table.
    Describe(String),
    /// `\timing`: show or hide the elapsed time after each result.
    ToggleTiming,
    /// `\q`: leave the REPL.
    Quit,
    /// `\?` or `\h`: list these commands.
    Help,
    /// Anything else starting with a backslash.
    Unknown(String),
}

pub const HELP: &str = "\
Meta-commands:
  \\d          list tables
  \\d TABLE    describe TABLE (its columns and types)
  \\timing     toggle the elapsed time shown after each result
  \\q          quit (or Ctrl-D)
  \\?          this help
SQL statements end with `;` and may span several lines; Ctrl-C clears the current input
(or cancels a running query).";

impl MetaCommand {
    /// Parses `line` if it is a backslash command; `None` means it is SQL.
    pub fn parse(line: &str) -> Option<Self> {
        let body = line.trim().strip_prefix('\\')?;
        // psql users often type `\d t;`; the `;` is not part of the name.
        let body = body.trim_end_matches(|c: char| c == ';' || c.is_whitespace());
        let (name, argument) = match body.split_once(char::is_whitespace) {
            Some((name, rest)) => (name, rest.trim()),
            None => (body, ""),
        };
        Some(match (name, argument) {
            ("d" | "dt", "") => Self::ListTables,
            ("d", table) => Self::Describe(table.to_string()),
            ("timing", "") => Self::ToggleTiming,
            ("q" | "quit", "") => Self::Quit,
            ("?" | "h" | "help", _) => Self::Help,
            _ => Self::Unknown(format!("\\{body}")),
        })
    }
}

/// The SQL a command sends, if it sends any.
pub fn list_tables_sql() -> &'static str {
    "SHOW TABLES"
}

pub fn describe_sql(table: &str) -> String {
    format!("DESCRIBE {table}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_known_commands() {
        assert_eq!(MetaCommand::parse("\\d"), Some(MetaCommand::ListTables));
        assert_eq!(
            MetaCommand::parse("  \\d  lineitem ; "),
            Some(MetaCommand::Describe("lineitem".into()))
        );
        assert_eq!(
            MetaCommand::parse("\\timing"),
            Some(MetaCommand::ToggleTiming)
        );
        assert_eq!(MetaCommand::parse("\\q"), Some(MetaCommand::Quit));
        assert_eq!(MetaCommand::parse("\\?"), Some(MetaCommand::Help));
    }

    #[test]
    fn sql_is_not_a_meta_command() {
        assert_eq!(MetaCommand::parse("select '\\d'"), None);
    }

    #[test]
    fn unknown_commands_are_reported_verbatim() {
        assert_eq!(
            MetaCommand::parse("\\x on"),
            Some(MetaCommand::Unknown("\\x on".into()))
        );
        assert_eq!(
            MetaCommand::parse("\\"),
            Some(MetaCommand::Unknown("\\".into()))
        );
    }
}
