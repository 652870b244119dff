//! One client session: runs statements, shows progress and prints results in the chosen format.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{Array, ArrayRef, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow::record_batch::RecordBatch;

use super::client::{ConnectError, Credentials, SqlClient};
use super::failover::{Coordinators, coordinator_lost, is_read_only};
use super::render::{self, ResultPrinter};
use super::spinner::Spinner;
use super::{OutputFormat, errors};

/// Tables in this schema are the server's own metadata views, not the user's tables.
const METADATA_SCHEMA: &str = "information_schema";

pub struct Session {
    coordinators: Coordinators,
    client: SqlClient,
    format: OutputFormat,
    /// Whether the summary line includes the elapsed time (`\timing`).
    pub timing: bool,
}

impl Session {
    /// Connects to the first coordinator of `url` (one URL, or several separated by commas)
    /// that answers.
    pub async fn connect(
        url: &str,
        format: OutputFormat,
        credentials: Option<Credentials>,
    ) -> Result<Self, ConnectError> {
        let mut coordinators = Coordinators::parse(url).with_credentials(credentials);
        let client = coordinators.connect(false).await?;
        Ok(Self {
            coordinators,
            client,
            format,
            timing: true,
        })
    }

    /// Runs one statement and prints its result; `Err` holds the one-line error message.
    /// When the coordinator is lost before any row was printed, the session moves to another
    /// coordinator and runs a read-only statement again there.
    pub async fn run_sql(&mut self, sql: &str) -> Result<(), String> {
        let mut attempts = 1;
        loop {
            let started = Instant::now();
            let mut spinner = Spinner::start();
            let outcome = self.stream_and_print(sql, started, &mut spinner).await;
            spinner.stop().await;
            let failure = match outcome {
                Ok(()) => return Ok(()),
                Err(failure) => failure,
            };
            if !failure.coordinator_lost || self.coordinators.len() < 2 {
                return Err(failure.message);
            }
            let lost = self.coordinators.current_url().to_string();
            if let Ok(client) = self.coordinators.connect(true).await {
                self.client = client;
            }
            let retry = is_read_only(sql)
                && !failure.printed
                && attempts < self.coordinators.len()
                && self.coordinators.current_url() != lost;
            if !retry {
                return Err(format!(
                    "{} (coordinator {lost} was lost; now using {}{})",
                    failure.message,
                    self.coordinators.current_url(),
                    if is_read_only(sql) {
                        ""
                    } else {
                        "; the statement may or may not have taken effect"
                    }
                ));
            }
            eprintln!(
                "coordinator {lost} is unavailable ({}); running the statement on {}",
                failure.message,
                self.coordinators.current_url()
            );
            attempts += 1;
        }
    }

    /// `\d`: the names of the user's tables.
    pub async fn list_tables(&mut self, sql: &str) -> Result<(), String> {
        let (schema, batches, elapsed) = self.collect(sql).await?;
        match table_names(&batches) {
            Some(names) => self.print_collected(names.schema(), vec![names], elapsed),
            // Not the shape we expected: show whatever the server answered.
            None => self.print_collected_opt(schema, batches, elapsed),
        }
    }

    /// Runs a statement and prints its result as it is, buffered (used by `\d TABLE`).
    pub async fn run_buffered(&mut self, sql: &str) -> Result<(), String> {
        let (schema, batches, elapsed) = self.collect(sql).await?;
        self.print_collected_opt(schema, batches, elapsed)
    }

    async fn stream_and_print(
        &mut self,
        sql: &str,
        started: Instant,
        spinner: &mut Spinner,
    ) -> Result<(), Failure> {
        let mut results = self
            .client
            .execute(sql)
            .await
            .map_err(|e| Failure::new(&e, false))?;
        let mut printer = ResultPrinter::new(self.format);
        let mut rows = 0;
        while let Some(batch) = results
            .next_batch()
            .await
            .map_err(|e| Failure::new(&e, rows > 0 && printer.writes_immediately()))?
        {
            rows += batch.num_rows();
            if printer.writes_immediately() {
                spinner.stop().await;
            }
            printer.push(batch).map_err(Failure::local)?;
        }
        let elapsed = started.elapsed();
        spinner.stop().await;
        printer
            .finish(results.schema(), &self.footer(rows, elapsed))
            .map_err(Failure::local)
    }

    async fn collect(
        &mut self,
        sql: &str,
    ) -> Result<(Option<SchemaRef>, Vec<RecordBatch>, Duration), String> {
        let started = Instant::now();
        let mut spinner = Spinner::start();
        let outcome = async {
            let mut results = self
                .client
                .execute(sql)
                .await
                .map_err(|e| errors::error_message(&e))?;
            let mut batches = Vec::new();
            while let Some(batch) = results
                .next_batch()
                .await
                .map_err(|e| errors::error_message(&e))?
            {
                batches.push(batch);
            }
            Ok::<_, String>((results.schema(), batches, started.elapsed()))
        }
        .await;
        spinner.stop().await;
        outcome
    }

    fn print_collected_opt(
        &self,
        schema: Option<SchemaRef>,
        batches: Vec<RecordBatch>,
        elapsed: Duration,
    ) -> Result<(), String> {
        let rows = batches.iter().map(RecordBatch::num_rows).sum();
        let mut printer = ResultPrinter::new(self.format);
        for batch in batches {
            printer.push(batch)?;
        }
        printer.finish(schema, &self.footer(rows, elapsed))
    }

    fn print_collected(
        &self,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        elapsed: Duration,
    ) -> Result<(), String> {
        self.print_collected_opt(Some(schema), batches, elapsed)
    }

    fn footer(&self, rows: usize, elapsed: Duration) -> String {
        render::footer(rows, self.timing.then_some(elapsed))
    }
}

/// Why a statement failed.
struct Failure {
    message: String,
    /// The coordinator went away or cannot serve now (another one may).
    coordinator_lost: bool,
    /// Some rows were already printed, so running the statement again would repeat them.
    printed: bool,
}

impl Failure {
    fn new(err: &(dyn std::error::Error + 'static), printed: bool) -> Self {
        Self {
            message: errors::error_message(err),
            coordinator_lost: coordinator_lost(err),
            printed,
        }
    }

    /// A failure on this side (printing), never worth another coordinator.
    fn local(message: String) -> Self {
        Self {
            message,
            coordinator_lost: false,
            printed: true,
        }
    }
}

/// Reduces a `SHOW TABLES` result to one `table_name` column without the metadata views.
/// `None` if the result has no `table_name` column.
fn table_names(batches: &[RecordBatch]) -> Option<RecordBatch> {
    let mut names = Vec::new();
    for batch in batches {
        let name_column = string_column(batch, "table_name")?;
        let schema_column = string_column(batch, "table_schema");
        for row in 0..batch.num_rows() {
            let in_metadata_schema = schema_column
                .as_ref()
                .is_some_and(|s| s.is_valid(row) && s.value(row) == METADATA_SCHEMA);
            if !in_metadata_schema && name_column.is_valid(row) {
                names.push(name_column.value(row).to_string());
            }
        }
    }
    names.sort();
    let schema = Arc::new(Schema::new(vec![Field::new(
        "table_name",
        DataType::Utf8,
        false,
    )]));
    let column: ArrayRef = Arc::new(StringArray::from(names));
    RecordBatch::try_new(schema, vec![column]).ok()
}

/// The column named `name` (any case), cast to strings; `None` if absent or not castable.
fn string_column(batch: &RecordBatch, name: &str) -> Option<StringArray> {
    let index = batch
        .schema()
        .fields()
        .iter()
        .position(|field| field.name().eq_ignore_ascii_case(name))?;
    let as_strings = arrow::compute::cast(batch.column(index), &DataType::Utf8).ok()?;
    as_strings.as_any().downcast_ref::<StringArray>().cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn show_tables_batch(rows: &[(&str, &str)]) -> RecordBatch {
        let schemas: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.0)));
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1)));
        RecordBatch::try_from_iter([("table_schema", schemas), ("table_name", names)])
            .expect("valid test batch")
    }

    #[test]
    fn table_names_drops_metadata_views_and_sorts() {
        let batch = show_tables_batch(&[
            ("public", "orders"),
            ("information_schema", "tables"),
            ("public", "lineitem"),
        ]);
        let names = table_names(&[batch]).expect("has table_name");
        let column = string_column(&names, "table_name").expect("string column");
        let values: Vec<&str> = (0..column.len()).map(|i| column.value(i)).collect();
        assert_eq!(values, vec!["lineitem", "orders"]);
    }

    #[test]
    fn unexpected_shape_is_not_reduced() {
        let other: ArrayRef = Arc::new(StringArray::from(vec!["x"]));
        let batch = RecordBatch::try_from_iter([("name", other)]).expect("valid test batch");
        assert!(table_names(&[batch]).is_none());
    }
}
