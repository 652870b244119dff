//! Plain Arrow types on every wire: view types are cast to their classic forms.
//!
//! Slicing a `Utf8View` batch and sending the slices resends the shared text buffers with every
//! slice, and many clients cannot read view types at all.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::compute::cast;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::Result;

/// The type a column takes on the wire and in storage.
pub fn plain_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) | DataType::ListView(f) => DataType::List(Arc::new(plain_field(f))),
        DataType::LargeList(f) | DataType::LargeListView(f) => {
            DataType::LargeList(Arc::new(plain_field(f)))
        }
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| Arc::new(plain_field(f))).collect())
        }
        other => other.clone(),
    }
}

fn plain_field(field: &Field) -> Field {
    field.clone().with_data_type(plain_type(field.data_type()))
}

/// `schema` with every view type replaced by its plain form.
pub fn plain_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| plain_field(f))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

/// Casts `batch` to `target` (a schema from [`plain_schema`]); a no-op when nothing changes.
pub fn cast_batch(batch: &RecordBatch, target: &SchemaRef) -> Result<RecordBatch> {
    if batch.schema().fields() == target.fields() {
        return Ok(batch.clone());
    }
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(col, field)| {
            if col.data_type() == field.data_type() {
                Ok(Arc::clone(col))
            } else {
                cast(col, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok(RecordBatch::try_new(Arc::clone(target), columns)?)
}
