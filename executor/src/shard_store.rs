//! The executor's data dir: durable shard files written atomically.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::{DataFusionError, Result};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;

use shoal_flight::column_stats::ColumnStatsBuilder;
use shoal_flight::rpc::WriteShardResponse;
use shoal_flight::shard_reader::resolve;
use shoal_flight::wire_types::cast_batch;

use crate::error::ExecutorError;

/// Rows per Parquet row group in shard files.
pub const ROW_GROUP_ROWS: usize = 64 * 1024;
/// Most rows per data page: the page index then narrows a point lookup to a few thousand rows
/// of each column rather than the writer's default of 20,000.
pub const PAGE_ROWS: usize = 8 * 1024;
/// Largest dictionary per column chunk before the writer falls back to plain encoding. A
/// lookup decompresses the dictionary of every column it reads, so a column with too many
/// distinct values for a small dictionary is better stored plain (the default limit of 1 MiB
/// made each lookup decompress megabytes of dictionaries).
pub const DICTIONARY_PAGE_BYTES: usize = 64 * 1024;

/// Shard files under `<data_dir>/shards/`.
#[derive(Debug, Clone)]
pub struct ShardStore {
    data_dir: PathBuf,
}

impl ShardStore {
    pub fn open(data_dir: &Path) -> Result<Self, ExecutorError> {
        std::fs::create_dir_all(data_dir).map_err(|source| ExecutorError::Io {
            path: data_dir.display().to_string(),
            source,
        })?;
        Ok(Self {
            data_dir: data_dir.to_path_buf(),
        })
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The identity of this data dir, created once; the catalog keeps the executor id per data id.
    pub fn data_id(&self) -> Result<String, ExecutorError> {
        let path = self.data_dir.join("executor-id");
        let io = |source| ExecutorError::Io {
            path: path.display().to_string(),
            source,
        };
        match std::fs::read_to_string(&path) {
            Ok(id) => Ok(id.trim().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = uuid::Uuid::new_v4().to_string();
                write_durably(&path, id.as_bytes()).map_err(io)?;
                Ok(id)
            }
            Err(e) => Err(io(e)),
        }
    }

    /// Writes `batches` as a Parquet file at `relative`, durable (fsynced and renamed into place)
    /// before it returns, and reports its statistics.
    pub fn write(
        &self,
        relative: &str,
        schema: &SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<WriteShardResponse> {
        let path = resolve(&self.data_dir, relative)?;
        let dir = path.parent().expect("shard paths have a parent");
        std::fs::create_dir_all(dir)?;
        let tmp = path.with_extension("parquet.tmp");
        let mut stats = ColumnStatsBuilder::try_new(schema)?;
        let mut rows = 0u64;
        let file = std::fs::File::create(&tmp)?;
        // Row groups of 64Ki rows: small enough that min/max statistics let a point lookup
        // skip most of a shard file, large enough to keep the footer small. Pages of 8Ki rows
        // bound what a lookup decompresses within the row group it reads. Snappy rather than
        // zstd: zstd's decompression was a third of a scan's CPU and half of a lookup's
        // decoding; snappy decompresses several times faster for somewhat larger files.
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            .set_data_page_row_count_limit(PAGE_ROWS)
            .set_dictionary_page_size_limit(DICTIONARY_PAGE_BYTES)
            .build();
        let mut writer = ArrowWriter::try_new(file, Arc::clone(schema), Some(props))?;
        for batch in batches {
            let batch = cast_batch(batch, schema)?;
            stats.update(&batch)?;
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        let file = writer.into_inner()?;
        file.sync_all()?;
        let bytes = file.metadata()?.len();
        drop(file);
        std::fs::rename(&tmp, &path)?;
        sync_dir(dir)?;
        Ok(WriteShardResponse {
            rows,
            bytes,
            column_stats: stats.finish()?,
        })
    }

    /// Removes files; missing files are fine (deletion is idempotent).
    pub fn delete(&self, relative: &[String]) -> Result<()> {
        for rel in relative {
            let path = resolve(&self.data_dir, rel)?;
            match std::fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(DataFusionError::Execution(format!(
                        "cannot delete {}: {e}",
                        path.display()
                    )));
                }
            }
        }
        Ok(())
    }
}

fn write_durably(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let mut file = std::fs::File::create(&tmp)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_dir(path.parent().expect("has a parent"))
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}
