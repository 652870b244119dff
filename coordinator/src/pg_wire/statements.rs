//! A Postgres query string as the statements Shoal runs: split, rewritten by
//! datafusion-pg-catalog where client system queries need it (`OPERATOR(pg_catalog.~)`,
//! `'t'::regclass`, `COLLATE pg_catalog.default`, ...), and each named with the command tag
//! Postgres completes it with.

use datafusion::sql::sqlparser::ast::{ObjectType, Set, Statement};
use datafusion_pg_catalog::sql::PostgresCompatibilityParser;

/// One statement to run.
#[derive(Debug, Clone)]
pub struct PgStatement {
    /// The text the query engine runs.
    pub sql: String,
    pub kind: StatementKind,
}

/// What a statement returns, and so how its completion is tagged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatementKind {
    /// Rows, tagged `<tag> <rows>` (SELECT, SHOW, EXPLAIN).
    Rows(&'static str),
    /// A count of changed rows, tagged `<tag> <count>` (`INSERT 0 <count>` for inserts).
    Count(&'static str),
    /// Nothing, tagged with a fixed text (CREATE TABLE, DROP TABLE).
    Status(&'static str),
    /// BEGIN, COMMIT or ROLLBACK. Shoal commits each statement as it runs, so these are
    /// accepted for clients that wrap statements in transactions and change nothing.
    Transaction(Transaction),
    /// A session setting clients send at connect (client_encoding, DateStyle, ...): accepted.
    Set,
    /// `SHOW <parameter>` of a server parameter, answered without the engine.
    ShowParameter(&'static str, String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Begin,
    Commit,
    Rollback,
}

impl StatementKind {
    /// Whether the engine runs this statement (the others are answered here).
    pub fn runs_on_engine(&self) -> bool {
        matches!(
            self,
            StatementKind::Rows(_) | StatementKind::Count(_) | StatementKind::Status(_)
        )
    }
}

/// The statements of `sql`. Text the Postgres parser cannot read (Shoal or DataFusion syntax)
/// goes to the engine as it is, as one statement.
pub fn split(parser: &PostgresCompatibilityParser, sql: &str) -> Vec<PgStatement> {
    match parser.parse(sql) {
        Ok(statements) => statements
            .iter()
            .map(|statement| PgStatement {
                sql: statement.to_string(),
                kind: kind_of(statement),
            })
            .collect(),
        Err(_) => vec![PgStatement {
            sql: sql.trim().trim_end_matches(';').to_string(),
            kind: StatementKind::Rows("SELECT"),
        }],
    }
}

fn kind_of(statement: &Statement) -> StatementKind {
    use StatementKind::*;
    match statement {
        Statement::Query(_) => Rows("SELECT"),
        Statement::Insert(_) => Count("INSERT"),
        Statement::Update(_) => Count("UPDATE"),
        Statement::Delete(_) => Count("DELETE"),
        Statement::Copy { .. } => Count("COPY"),
        // Postgres tags CREATE TABLE AS with the rows it wrote.
        Statement::CreateTable(create) if create.query.is_some() => Count("SELECT"),
        Statement::CreateTable(_) => Status("CREATE TABLE"),
        Statement::CreateView(_) => Status("CREATE VIEW"),
        Statement::Drop { object_type, .. } => Status(match object_type {
            ObjectType::View => "DROP VIEW",
            ObjectType::Schema => "DROP SCHEMA",
            _ => "DROP TABLE",
        }),
        Statement::Explain { .. } | Statement::ExplainTable { .. } => Rows("EXPLAIN"),
        Statement::StartTransaction { .. } => Transaction(self::Transaction::Begin),
        Statement::Commit { .. } => Transaction(self::Transaction::Commit),
        Statement::Rollback { .. } => Transaction(self::Transaction::Rollback),
        Statement::Set(set) if is_client_setting(set) => Set,
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_ascii_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            match server_parameter(&name) {
                Some((column, value)) => ShowParameter(column, value),
                None => Rows("SHOW"),
            }
        }
        Statement::ShowTables { .. } | Statement::ShowColumns { .. } => Rows("SHOW"),
        _ => Rows("SELECT"),
    }
}

/// Settings of the session that Shoal keeps fixed; DataFusion's own (`datafusion.*`) go to
/// the engine, which says it cannot change them.
fn is_client_setting(set: &Set) -> bool {
    match set {
        Set::SingleAssignment { variable, .. } => !variable
            .to_string()
            .to_ascii_lowercase()
            .starts_with("datafusion."),
        _ => true,
    }
}

/// The column name and value of a server parameter clients ask about.
fn server_parameter(name: &str) -> Option<(&'static str, String)> {
    let (column, value) = match name {
        "server_version" => (
            "server_version",
            format!("16.6 (Shoal {})", env!("CARGO_PKG_VERSION")),
        ),
        "server_version_num" => ("server_version_num", "160006".to_string()),
        "server_encoding" => ("server_encoding", "UTF8".to_string()),
        "client_encoding" => ("client_encoding", "UTF8".to_string()),
        "datestyle" => ("DateStyle", "ISO, YMD".to_string()),
        "timezone" | "time zone" => ("TimeZone", "Etc/UTC".to_string()),
        "transaction isolation level" | "transaction_isolation" => {
            ("transaction_isolation", "read committed".to_string())
        }
        "standard_conforming_strings" => ("standard_conforming_strings", "on".to_string()),
        "integer_datetimes" => ("integer_datetimes", "on".to_string()),
        "search_path" => ("search_path", "public".to_string()),
        "max_identifier_length" => ("max_identifier_length", "63".to_string()),
        "is_superuser" => ("is_superuser", "on".to_string()),
        _ => return None,
    };
    Some((column, value))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(sql: &str) -> Vec<StatementKind> {
        split(&PostgresCompatibilityParser::new(), sql)
            .into_iter()
            .map(|s| s.kind)
            .collect()
    }

    #[test]
    fn each_statement_gets_its_postgres_tag() {
        use StatementKind::*;
        assert_eq!(
            kinds(
                "CREATE TABLE t (a INT); INSERT INTO t VALUES (1); SELECT * FROM t; DROP TABLE t"
            ),
            vec![
                Status("CREATE TABLE"),
                Count("INSERT"),
                Rows("SELECT"),
                Status("DROP TABLE")
            ]
        );
        assert_eq!(
            kinds("CREATE TABLE u AS SELECT 1 AS a"),
            vec![Count("SELECT")]
        );
        assert_eq!(
            kinds("BEGIN; COMMIT; ROLLBACK"),
            vec![
                Transaction(self::Transaction::Begin),
                Transaction(self::Transaction::Commit),
                Transaction(self::Transaction::Rollback)
            ]
        );
        assert_eq!(kinds("SET client_encoding TO 'UTF8'"), vec![Set]);
        assert_eq!(
            kinds("SET datafusion.execution.batch_size = 10"),
            vec![Rows("SELECT")]
        );
        assert_eq!(
            kinds("SHOW TRANSACTION ISOLATION LEVEL"),
            vec![ShowParameter(
                "transaction_isolation",
                "read committed".into()
            )]
        );
    }

    #[test]
    fn psql_system_queries_are_rewritten_for_datafusion() {
        let statements = split(
            &PostgresCompatibilityParser::new(),
            "SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.~) '^(t)$' COLLATE pg_catalog.default",
        );
        assert_eq!(statements.len(), 1);
        assert!(
            !statements[0].sql.contains("OPERATOR"),
            "{}",
            statements[0].sql
        );
        assert!(
            !statements[0].sql.contains("COLLATE"),
            "{}",
            statements[0].sql
        );
    }

    #[test]
    fn shoal_syntax_the_postgres_parser_rejects_passes_through() {
        let statements = split(
            &PostgresCompatibilityParser::new(),
            "COPY t TO '/tmp/out.parquet' STORED AS PARQUET;",
        );
        assert_eq!(statements.len(), 1);
        assert_eq!(
            statements[0].sql,
            "COPY t TO '/tmp/out.parquet' STORED AS PARQUET"
        );
    }
}
