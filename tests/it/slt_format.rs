//! How sqllogictest sees Arrow results: one type letter per column and one string per value,
//! following DataFusion's own `.slt` conventions so its files read the same way.

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Float16Type, Float32Type, Float64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use sqllogictest::ColumnType;

/// B boolean, D date/time, I integer, P timestamp, R float or decimal, T text, ? anything else.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SltType {
    Boolean,
    DateTime,
    Integer,
    Timestamp,
    Real,
    Text,
    Other,
}

impl ColumnType for SltType {
    fn from_char(value: char) -> Option<Self> {
        Some(match value {
            'B' => Self::Boolean,
            'D' => Self::DateTime,
            'I' => Self::Integer,
            'P' => Self::Timestamp,
            'R' => Self::Real,
            'T' => Self::Text,
            _ => Self::Other,
        })
    }

    fn to_char(&self) -> char {
        match self {
            Self::Boolean => 'B',
            Self::DateTime => 'D',
            Self::Integer => 'I',
            Self::Timestamp => 'P',
            Self::Real => 'R',
            Self::Text => 'T',
            Self::Other => '?',
        }
    }
}

pub fn slt_type(data_type: &DataType) -> SltType {
    match data_type {
        DataType::Boolean => SltType::Boolean,
        DataType::Date32 | DataType::Date64 | DataType::Time32(_) | DataType::Time64(_) => {
            SltType::DateTime
        }
        DataType::Timestamp(_, _) => SltType::Timestamp,
        t if t.is_integer() => SltType::Integer,
        t if t.is_floating() => SltType::Real,
        DataType::Decimal32(_, _)
        | DataType::Decimal64(_, _)
        | DataType::Decimal128(_, _)
        | DataType::Decimal256(_, _) => SltType::Real,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => SltType::Text,
        DataType::Dictionary(_, value) => slt_type(value),
        _ => SltType::Other,
    }
}

/// Every row of `batches` as display strings: `NULL`, `(empty)` for the empty string, and floats
/// rounded to 12 significant digits so that summation order across shards does not show.
pub fn format_rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<String>> = batch
            .columns()
            .iter()
            .map(|c| format_column(c, &options))
            .collect();
        for row in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[row].clone()).collect());
        }
    }
    rows
}

fn format_column(column: &ArrayRef, options: &FormatOptions) -> Vec<String> {
    let floats: Option<Vec<Option<f64>>> = match column.data_type() {
        DataType::Float16 => Some(
            column
                .as_primitive::<Float16Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
        ),
        DataType::Float32 => Some(
            column
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(f64::from))
                .collect(),
        ),
        DataType::Float64 => Some(column.as_primitive::<Float64Type>().iter().collect()),
        _ => None,
    };
    if let Some(values) = floats {
        return values
            .into_iter()
            .map(|v| v.map_or_else(|| "NULL".to_string(), format_float))
            .collect();
    }
    let formatter = ArrayFormatter::try_new(column.as_ref(), options).expect("formattable");
    let is_text = matches!(slt_type(column.data_type()), SltType::Text);
    (0..column.len())
        .map(|i| {
            let text = formatter.value(i).to_string();
            if is_text && column.is_valid(i) && text.is_empty() {
                "(empty)".to_string()
            } else {
                text
            }
        })
        .collect()
}

pub fn format_float(value: f64) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let rounded: f64 = format!("{value:.11e}").parse().expect("float round trip");
    if rounded == 0.0 {
        "0".into()
    } else {
        rounded.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::format_float;

    #[test]
    fn floats_hide_summation_order() {
        assert_eq!(format_float(0.1 + 0.2), "0.3");
        assert_eq!(format_float(-0.0), "0");
        assert_eq!(format_float(2.0), "2");
        assert_eq!(format_float(1.0 / 3.0), "0.333333333333");
        assert_eq!(format_float(f64::NEG_INFINITY), "-Infinity");
    }
}
