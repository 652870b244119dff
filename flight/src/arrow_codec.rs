//! Encodings of Arrow schemas and statistics values as the opaque bytes the catalog stores.

use arrow::datatypes::{Schema, SchemaRef};
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion_proto::protobuf;
use prost::Message;

/// Arrow schema -> bytes (an Arrow IPC stream with no batches).
pub fn encode_schema(schema: &Schema) -> Vec<u8> {
    let mut bytes = Vec::new();
    let mut writer =
        StreamWriter::try_new(&mut bytes, schema).expect("every Arrow schema is IPC-encodable");
    writer.finish().expect("writing to memory does not fail");
    drop(writer);
    bytes
}

/// Bytes written by [`encode_schema`] -> Arrow schema.
pub fn decode_schema(bytes: &[u8]) -> Result<SchemaRef> {
    let reader = StreamReader::try_new(std::io::Cursor::new(bytes), None)
        .map_err(|e| DataFusionError::Internal(format!("corrupt schema in catalog: {e}")))?;
    Ok(reader.schema())
}

/// A statistics value -> bytes (DataFusion's protobuf form of `ScalarValue`).
pub fn encode_scalar(value: &ScalarValue) -> Result<Vec<u8>> {
    let proto = protobuf::ScalarValue::try_from(value)
        .map_err(|e| DataFusionError::Internal(format!("cannot encode statistic: {e}")))?;
    Ok(proto.encode_to_vec())
}

/// Bytes written by [`encode_scalar`] -> a statistics value.
pub fn decode_scalar(bytes: &[u8]) -> Result<ScalarValue> {
    let proto = protobuf::ScalarValue::decode(bytes)
        .map_err(|e| DataFusionError::Internal(format!("corrupt statistic in catalog: {e}")))?;
    ScalarValue::try_from(&proto)
        .map_err(|e| DataFusionError::Internal(format!("corrupt statistic in catalog: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::datatypes::{DataType, Field};

    #[test]
    fn schema_round_trips() {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("b", DataType::Utf8, true),
            Field::new("c", DataType::Decimal128(15, 2), true),
        ]);
        let decoded = decode_schema(&encode_schema(&schema)).unwrap();
        assert_eq!(decoded.as_ref(), &schema);
    }

    #[test]
    fn scalar_round_trips() {
        for v in [
            ScalarValue::Int64(Some(42)),
            ScalarValue::Utf8(Some("x".into())),
            ScalarValue::Date32(Some(9000)),
            ScalarValue::Decimal128(Some(12345), 15, 2),
        ] {
            assert_eq!(decode_scalar(&encode_scalar(&v).unwrap()).unwrap(), v);
        }
    }
}
