//! A shard file as Parquet's async reader sees it: positional reads, all the ranges a row
//! group needs in one blocking call, each straight into its own buffer.
//!
//! `tokio::fs::File` costs a blocking-pool round trip for every seek and every read, and copies
//! each read through its own buffer; for a scan that is two thread hand-offs per column chunk.

use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use futures::FutureExt;
use futures::future::BoxFuture;
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};

/// An open shard file, with the length and modification time of what was opened.
pub struct LocalParquetFile {
    file: Arc<std::fs::File>,
    size: u64,
    modified: Option<SystemTime>,
}

impl LocalParquetFile {
    pub async fn open(path: &Path) -> std::io::Result<Self> {
        let path = path.to_path_buf();
        tokio::task::spawn_blocking(move || {
            let file = std::fs::File::open(&path)?;
            let stat = file.metadata()?;
            Ok(Self {
                file: Arc::new(file),
                size: stat.len(),
                modified: stat.modified().ok(),
            })
        })
        .await
        .map_err(std::io::Error::other)?
    }

    /// The file's length in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn modified(&self) -> Option<SystemTime> {
        self.modified
    }

    fn read_ranges(&self, ranges: Vec<Range<u64>>) -> BoxFuture<'static, Result<Vec<Bytes>>> {
        let file = Arc::clone(&self.file);
        async move {
            tokio::task::spawn_blocking(move || {
                ranges
                    .into_iter()
                    .map(|range| read_range(&file, range))
                    .collect()
            })
            .await
            .map_err(|e| ParquetError::External(Box::new(e)))?
        }
        .boxed()
    }
}

fn read_range(file: &std::fs::File, range: Range<u64>) -> Result<Bytes> {
    let len = usize::try_from(range.end.saturating_sub(range.start))
        .map_err(|e| ParquetError::External(Box::new(e)))?;
    let mut buffer = vec![0; len];
    file.read_exact_at(&mut buffer, range.start)
        .map_err(|e| ParquetError::External(Box::new(e)))?;
    Ok(buffer.into())
}

impl AsyncFileReader for LocalParquetFile {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, Result<Bytes>> {
        let read = self.read_ranges(vec![range]);
        async move {
            read.await?
                .pop()
                .ok_or_else(|| ParquetError::General("no bytes read".into()))
        }
        .boxed()
    }

    fn get_byte_ranges(&mut self, ranges: Vec<Range<u64>>) -> BoxFuture<'_, Result<Vec<Bytes>>> {
        self.read_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, Result<Arc<ParquetMetaData>>> {
        async move {
            let size = self.size;
            let metadata = ParquetMetaDataReader::new()
                .with_arrow_reader_options(options)
                .load_and_finish(&mut *self, size)
                .await?;
            Ok(Arc::new(metadata))
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[tokio::test]
    async fn reads_each_range_and_refuses_reads_past_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::File::create(&path)
            .unwrap()
            .write_all(b"0123456789")
            .unwrap();
        let mut file = LocalParquetFile::open(&path).await.unwrap();
        assert_eq!(file.size(), 10);
        let parts = file.get_byte_ranges(vec![2..4, 7..10, 5..5]).await.unwrap();
        assert_eq!(parts, vec![&b"23"[..], &b"789"[..], &b""[..]]);
        assert_eq!(file.get_bytes(0..3).await.unwrap(), &b"012"[..]);
        assert!(file.get_bytes(8..12).await.is_err());
    }
}
