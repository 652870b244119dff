//! Prints result batches to stdout as an aligned table, CSV or JSON lines.
//!
//! CSV and JSON are written batch by batch as they arrive (results can be large and are often
//! piped); the table has to see every row to align its columns, so it buffers.

use std::io::{self, IsTerminal, Stdout, Write};
use std::time::Duration;

use arrow::datatypes::SchemaRef;
use arrow::json::writer::LineDelimited;
use arrow::record_batch::RecordBatch;
use arrow::util::pretty::{pretty_format_batches, pretty_format_batches_with_schema};

use super::OutputFormat;

/// Accumulates or streams one statement's result.
pub enum ResultPrinter {
    Table {
        batches: Vec<RecordBatch>,
    },
    // Boxed: the writers are large and a printer lives for one statement.
    Csv {
        writer: Box<arrow::csv::Writer<Stdout>>,
        wrote_any: bool,
    },
    Json {
        writer: Box<arrow::json::Writer<Stdout, LineDelimited>>,
    },
}

impl ResultPrinter {
    pub fn new(format: OutputFormat) -> Self {
        match format {
            OutputFormat::Table => Self::Table {
                batches: Vec::new(),
            },
            OutputFormat::Csv => Self::Csv {
                writer: Box::new(
                    arrow::csv::WriterBuilder::new()
                        .with_header(true)
                        .build(io::stdout()),
                ),
                wrote_any: false,
            },
            OutputFormat::Json => Self::Json {
                // Explicit nulls keep every row's keys identical, which `jq` users expect.
                writer: Box::new(
                    arrow::json::WriterBuilder::new()
                        .with_explicit_nulls(true)
                        .build::<_, LineDelimited>(io::stdout()),
                ),
            },
        }
    }

    /// True if [`push`](Self::push) writes to stdout immediately (the caller must stop the
    /// progress indicator first).
    pub fn writes_immediately(&self) -> bool {
        !matches!(self, Self::Table { .. })
    }

    pub fn push(&mut self, batch: RecordBatch) -> Result<(), String> {
        match self {
            Self::Table { batches } => batches.push(batch),
            Self::Csv { writer, wrote_any } => {
                writer.write(&batch).map_err(output_error)?;
                *wrote_any = true;
            }
            Self::Json { writer } => writer.write(&batch).map_err(output_error)?,
        }
        Ok(())
    }

    /// Prints what is buffered and the summary line (`footer`, e.g. `(3 rows, 0.012 s)`).
    /// The table gets its footer on stdout like psql; CSV and JSON keep stdout machine-readable
    /// and show the footer on stderr, and only when a person is watching.
    pub fn finish(self, schema: Option<SchemaRef>, footer: &str) -> Result<(), String> {
        let mut stdout = io::stdout();
        match self {
            Self::Table { batches } => {
                let table = match (batches.is_empty(), schema) {
                    // An empty result still shows its column names.
                    (true, Some(schema)) => pretty_format_batches_with_schema(schema, &batches)
                        .map(|table| table.to_string()),
                    _ => pretty_format_batches(&batches).map(|table| table.to_string()),
                }
                .map_err(|e| format!("cannot format result: {e}"))?;
                if !table.is_empty() {
                    writeln!(stdout, "{table}").map_err(output_error)?;
                }
                writeln!(stdout, "{footer}").map_err(output_error)?;
            }
            Self::Csv {
                mut writer,
                wrote_any,
            } => {
                if let (false, Some(schema)) = (wrote_any, schema) {
                    // Writing an empty batch emits just the header line.
                    writer
                        .write(&RecordBatch::new_empty(schema))
                        .map_err(output_error)?;
                }
                writer.into_inner().flush().map_err(output_error)?;
                footer_to_terminal(footer);
            }
            Self::Json { mut writer } => {
                writer.finish().map_err(output_error)?;
                writer.into_inner().flush().map_err(output_error)?;
                footer_to_terminal(footer);
            }
        }
        Ok(())
    }
}

/// `(1 row)`, `(3 rows, 0.012 s)`.
pub fn footer(rows: usize, elapsed: Option<Duration>) -> String {
    let noun = if rows == 1 { "row" } else { "rows" };
    match elapsed {
        Some(elapsed) => format!("({rows} {noun}, {:.3} s)", elapsed.as_secs_f64()),
        None => format!("({rows} {noun})"),
    }
}

fn footer_to_terminal(footer: &str) {
    let stderr = io::stderr();
    if stderr.is_terminal() {
        let _ = writeln!(stderr.lock(), "{footer}");
    }
}

fn output_error(e: impl std::fmt::Display) -> String {
    format!("cannot write output: {e}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn footer_pluralizes_and_shows_millis() {
        assert_eq!(footer(1, None), "(1 row)");
        assert_eq!(
            footer(3, Some(Duration::from_millis(12))),
            "(3 rows, 0.012 s)"
        );
        assert_eq!(footer(0, Some(Duration::from_secs(2))), "(0 rows, 2.000 s)");
    }
}
