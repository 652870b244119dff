//! Serializes `ShardScanExec` for the trip from the coordinator's planner to the executors.

use std::sync::Arc;

use datafusion::common::{Result, internal_err};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use serde::{Deserialize, Serialize};

use crate::arrow_codec::{decode_schema, encode_schema};
use crate::scan_predicate::{decode_predicate, encode_predicate};
use crate::shard_scan::{ShardPartition, ShardScanExec};

#[derive(Debug, Default, Clone)]
pub struct ShardScanCodec;

#[derive(Serialize, Deserialize)]
struct ShardScanProto {
    table: String,
    table_schema_ipc: Vec<u8>,
    projection: Option<Vec<usize>>,
    partitions: Vec<ShardPartition>,
    total_buckets: u32,
    executor: Option<String>,
    #[serde(default)]
    hash_key: Option<String>,
    #[serde(default)]
    predicate: Option<Vec<u8>>,
}

impl PhysicalExtensionCodec for ShardScanCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !inputs.is_empty() {
            return internal_err!("ShardScanExec has no children, got {}", inputs.len());
        }
        let proto: ShardScanProto = serde_json::from_slice(buf).map_err(|e| {
            datafusion::error::DataFusionError::Internal(format!("corrupt ShardScanExec: {e}"))
        })?;
        let table_schema = decode_schema(&proto.table_schema_ipc)?;
        let predicate = proto
            .predicate
            .as_deref()
            .and_then(|bytes| decode_predicate(bytes, &table_schema, ctx));
        let scan = ShardScanExec::try_new(
            proto.table,
            table_schema,
            proto.projection,
            proto.partitions,
            proto.total_buckets,
            proto.executor,
        )?
        .with_predicate(predicate);
        Ok(Arc::new(match &proto.hash_key {
            Some(key) => scan.declare_hash_partitioning(key),
            None => scan,
        }))
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        _proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        let Some(scan) = node.downcast_ref::<ShardScanExec>() else {
            return internal_err!("ShardScanCodec cannot encode {}", node.name());
        };
        let proto = ShardScanProto {
            table: scan.table().to_string(),
            table_schema_ipc: encode_schema(scan.table_schema()),
            projection: scan.projection().cloned(),
            partitions: scan.partitions().to_vec(),
            total_buckets: scan.total_buckets(),
            executor: scan.executor().map(str::to_string),
            hash_key: scan.hash_key().map(str::to_string),
            predicate: scan.predicate().and_then(encode_predicate),
        };
        serde_json::to_writer(buf, &proto).map_err(|e| {
            datafusion::error::DataFusionError::Internal(format!(
                "cannot encode ShardScanExec: {e}"
            ))
        })
    }
}
