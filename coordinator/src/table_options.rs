//! Shoal's table options: `CREATE TABLE t (...) WITH (distribution = 'col', shards = 8,
//! replication = 2)`.

use datafusion::common::{Result, plan_err};
use datafusion::sql::sqlparser::ast::{CreateTableOptions, Expr, SqlOption, Value};

/// Options given in a `WITH (...)` clause; `None` means "use the default".
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TableOptions {
    /// Hash-distribution column; absent: the table is small and replicated to every executor.
    pub distribution: Option<String>,
    pub shards: Option<u32>,
    pub replication: Option<u32>,
}

impl TableOptions {
    /// Takes Shoal's options out of `options`, leaving `CreateTableOptions::None` for DataFusion.
    pub fn take_from(options: &mut CreateTableOptions) -> Result<Self> {
        let list = match std::mem::take(options) {
            CreateTableOptions::None => return Ok(Self::default()),
            CreateTableOptions::With(list) => list,
            other => {
                return plan_err!(
                    "unsupported table options: {other}; use WITH (distribution = 'column', shards = N, replication = N)"
                );
            }
        };
        let mut parsed = Self::default();
        for option in list {
            let SqlOption::KeyValue { key, value } = option else {
                return plan_err!("unsupported table option '{option}'; use key = value");
            };
            match key.value.to_ascii_lowercase().as_str() {
                "distribution" | "distribute_by" => {
                    parsed.distribution = Some(string_value(&value, "distribution")?)
                }
                "shards" => parsed.shards = Some(positive(&value, "shards")?),
                "replication" => parsed.replication = Some(positive(&value, "replication")?),
                other => {
                    return plan_err!(
                        "unknown table option '{other}'; valid options are distribution, shards, replication"
                    );
                }
            }
        }
        Ok(parsed)
    }
}

impl TableOptions {
    /// Options given as text pairs, as Flight SQL bulk ingest carries them. Keys may carry a
    /// `shoal.` prefix; keys without it that Shoal does not know belong to the client driver.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Result<Self> {
        let mut parsed = Self::default();
        for (key, value) in pairs {
            let key = key.to_ascii_lowercase();
            let number = || match value.trim().parse::<u32>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => plan_err!("table option {key} must be a positive integer, got '{value}'"),
            };
            match key.trim_start_matches("shoal.") {
                "distribution" | "distribute_by" => {
                    parsed.distribution = Some(value.trim().to_lowercase())
                }
                "shards" => parsed.shards = Some(number()?),
                "replication" => parsed.replication = Some(number()?),
                other if key.starts_with("shoal.") => {
                    return plan_err!(
                        "unknown table option '{other}'; valid options are shoal.distribution, shoal.shards, shoal.replication"
                    );
                }
                _ => {}
            }
        }
        Ok(parsed)
    }
}

fn string_value(value: &Expr, name: &str) -> Result<String> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Ok(s.to_lowercase()),
            other => plan_err!("table option {name} must be a column name, got {other}"),
        },
        Expr::Identifier(ident) => Ok(ident.value.to_lowercase()),
        other => plan_err!("table option {name} must be a column name, got {other}"),
    }
}

fn positive(value: &Expr, name: &str) -> Result<u32> {
    if let Expr::Value(v) = value
        && let Value::Number(n, _) = &v.value
        && let Ok(n) = n.parse::<u32>()
        && n >= 1
    {
        return Ok(n);
    }
    plan_err!("table option {name} must be a positive integer, got {value}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::ast::Statement;
    use datafusion::sql::sqlparser::dialect::GenericDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn options_of(sql: &str) -> Result<TableOptions> {
        let mut stmt = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        let Statement::CreateTable(create) = &mut stmt else {
            panic!("not a create")
        };
        TableOptions::take_from(&mut create.table_options)
    }

    #[test]
    fn parses_every_option() {
        let o = options_of(
            "CREATE TABLE t (a INT) WITH (distribution = 'A', shards = 8, replication = 2)",
        )
        .unwrap();
        assert_eq!(
            o,
            TableOptions {
                distribution: Some("a".into()),
                shards: Some(8),
                replication: Some(2)
            }
        );
        assert_eq!(
            options_of("CREATE TABLE t (a INT)").unwrap(),
            TableOptions::default()
        );
    }

    #[test]
    fn rejects_bad_options() {
        let err = options_of("CREATE TABLE t (a INT) WITH (shards = 0)").unwrap_err();
        assert!(
            err.to_string()
                .contains("shards must be a positive integer"),
            "{err}"
        );
        let err = options_of("CREATE TABLE t (a INT) WITH (colour = 'red')").unwrap_err();
        assert!(
            err.to_string().contains("unknown table option 'colour'"),
            "{err}"
        );
    }

    #[test]
    fn pairs_from_bulk_ingest() {
        let parsed =
            TableOptions::from_pairs([("shoal.distribution", "Id"), ("shards", "4"), ("x", "y")])
                .unwrap();
        assert_eq!(parsed.distribution.as_deref(), Some("id"));
        assert_eq!(parsed.shards, Some(4));
        let err = TableOptions::from_pairs([("shoal.shard", "4")]).unwrap_err();
        assert!(
            err.to_string().contains("unknown table option 'shard'"),
            "{err}"
        );
        let err = TableOptions::from_pairs([("shards", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("must be a positive integer"),
            "{err}"
        );
    }
}
