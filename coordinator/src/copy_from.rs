//! `COPY t FROM 'path or glob' [WITH (FORMAT parquet|csv, HEADER true, DELIMITER ',')]`:
//! loads files from the coordinator's filesystem (or a file:// URL) through the normal write path.

use std::path::Path;

use arrow::datatypes::SchemaRef;
use datafusion::common::{Result, plan_err};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{cast, col};
use datafusion::prelude::{CsvReadOptions, ParquetReadOptions, SessionContext};
use datafusion::sql::sqlparser::ast::{CopyOption, CopySource, CopyTarget, Statement};
use shoal_flight::error::coded;
use tonic::Code;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyFrom {
    pub table: String,
    pub path: String,
    pub format: FileFormat,
    pub header: bool,
    pub delimiter: u8,
}

impl CopyFrom {
    /// Recognizes `COPY table FROM 'file'`; `None` for any other statement.
    pub fn from_statement(statement: &Statement) -> Option<Result<Self>> {
        let Statement::Copy {
            source,
            to: false,
            target,
            options,
            ..
        } = statement
        else {
            return None;
        };
        Some(Self::parse(source, target, options))
    }

    fn parse(source: &CopySource, target: &CopyTarget, options: &[CopyOption]) -> Result<Self> {
        let CopySource::Table {
            table_name,
            columns,
        } = source
        else {
            return plan_err!("COPY FROM loads into a table, not a query");
        };
        if !columns.is_empty() {
            return plan_err!(
                "COPY FROM with a column list is not supported; the file must have the table's columns"
            );
        }
        let CopyTarget::File { filename } = target else {
            return plan_err!(
                "COPY FROM reads a file path or URL, e.g. COPY t FROM '/data/t.parquet'"
            );
        };
        let mut format = if filename.to_ascii_lowercase().ends_with(".csv") {
            FileFormat::Csv
        } else {
            FileFormat::Parquet
        };
        let (mut header, mut delimiter) = (true, b',');
        for option in options {
            match option {
                CopyOption::Format(f) => {
                    format = match f.value.to_ascii_lowercase().as_str() {
                        "parquet" => FileFormat::Parquet,
                        "csv" => FileFormat::Csv,
                        other => {
                            return plan_err!(
                                "COPY format '{other}' is not supported; use parquet or csv"
                            );
                        }
                    }
                }
                CopyOption::Header(h) => header = *h,
                CopyOption::Delimiter(d) if d.is_ascii() => delimiter = *d as u8,
                other => return plan_err!("COPY option '{other}' is not supported"),
            }
        }
        Ok(Self {
            table: table_name.to_string().to_lowercase(),
            path: filename.clone(),
            format,
            header,
            delimiter,
        })
    }

    /// The file's rows with the table's column names and types, ready to insert.
    pub async fn read(&self, ctx: &SessionContext, table_schema: &SchemaRef) -> Result<DataFrame> {
        let local = self.path.strip_prefix("file://").unwrap_or(&self.path);
        let is_glob = local.contains(['*', '?', '[']);
        let is_local = !self.path.contains("://") || self.path.starts_with("file://");
        if is_local && !is_glob && !Path::new(local).exists() {
            return Err(coded(
                Code::NotFound,
                format!("COPY: file '{}' does not exist", self.path),
            ));
        }
        let unreadable = |e: datafusion::error::DataFusionError| {
            coded(
                Code::InvalidArgument,
                format!(
                    "COPY: cannot read '{}' as {:?}: {}",
                    self.path,
                    self.format,
                    e.message()
                ),
            )
        };
        let df = match self.format {
            FileFormat::Parquet => ctx
                .read_parquet(local, ParquetReadOptions::default())
                .await
                .map_err(unreadable)?,
            FileFormat::Csv => ctx
                .read_csv(
                    local,
                    CsvReadOptions::new()
                        .has_header(self.header)
                        .delimiter(self.delimiter)
                        .schema(table_schema.as_ref())
                        .file_extension(""),
                )
                .await
                .map_err(unreadable)?,
        };
        let file_columns: Vec<String> = df
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().to_lowercase())
            .collect();
        let mut exprs = Vec::new();
        for field in table_schema.fields() {
            let Some(position) = file_columns.iter().position(|c| c == field.name()) else {
                return Err(coded(
                    Code::InvalidArgument,
                    format!("COPY: '{}' has no column '{}'", self.path, field.name()),
                ));
            };
            let source = df.schema().field(position).name().clone();
            exprs.push(
                cast(col(format!("\"{source}\"")), field.data_type().clone()).alias(field.name()),
            );
        }
        df.select(exprs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn parse(sql: &str) -> Result<CopyFrom> {
        let stmt = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        CopyFrom::from_statement(&stmt).unwrap()
    }

    #[test]
    fn parses_copy_from() {
        let c = parse("COPY Orders FROM '/d/o.csv' WITH (FORMAT csv, HEADER false, DELIMITER '|')")
            .unwrap();
        assert_eq!(c.table, "orders");
        assert_eq!(c.format, FileFormat::Csv);
        assert!(!c.header);
        assert_eq!(c.delimiter, b'|');
        assert_eq!(
            parse("COPY t FROM '/d/*.parquet'").unwrap().format,
            FileFormat::Parquet
        );
    }
}
