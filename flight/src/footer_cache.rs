//! Parsed Parquet footers (with their page index) of the shard files this process has read.
//! A shard file never changes once renamed into place, so a query need not read and parse its
//! footer again; for a point lookup that parsing is a good part of the work.

use std::collections::{HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions};
use parquet::errors::Result;
use parquet::file::metadata::PageIndexPolicy;

use crate::local_parquet_file::LocalParquetFile;

/// Footers kept; the oldest is dropped beyond this (a footer is a few KiB to a few hundred).
const CAPACITY: usize = 4096;

/// What identifies one version of a file: a path reused for new contents (a table dropped and
/// its directory written again) has another length or modification time.
#[derive(Clone, PartialEq, Eq, Hash)]
struct FileVersion {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
}

#[derive(Default)]
struct Footers {
    entries: HashMap<FileVersion, ArrowReaderMetadata>,
    order: VecDeque<FileVersion>,
}

fn footers() -> &'static Mutex<Footers> {
    static FOOTERS: OnceLock<Mutex<Footers>> = OnceLock::new();
    FOOTERS.get_or_init(Default::default)
}

/// The footer of the file at `path` (open as `file`), from the cache or read and cached. The
/// version comes from the open file, so it is the one the reader will read.
pub async fn footer(path: &Path, file: &mut LocalParquetFile) -> Result<ArrowReaderMetadata> {
    let version = FileVersion {
        path: path.to_path_buf(),
        len: file.size(),
        modified: file.modified(),
    };
    if let Some(found) = footers()
        .lock()
        .expect("not poisoned")
        .entries
        .get(&version)
    {
        return Ok(found.clone());
    }
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Optional);
    let metadata = ArrowReaderMetadata::load_async(file, options).await?;
    let mut footers = footers().lock().expect("not poisoned");
    if footers
        .entries
        .insert(version.clone(), metadata.clone())
        .is_none()
    {
        footers.order.push_back(version);
    }
    while footers.order.len() > CAPACITY {
        if let Some(oldest) = footers.order.pop_front() {
            footers.entries.remove(&oldest);
        }
    }
    Ok(metadata)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow::array::{Int64Array, RecordBatch};
    use arrow::datatypes::{DataType, Field, Schema};
    use parquet::arrow::ArrowWriter;

    use super::*;

    fn write(path: &Path, rows: i64) {
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let column = Arc::new(Int64Array::from_iter_values(0..rows));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![column]).unwrap();
        let mut writer =
            ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    async fn read(path: &Path) -> ArrowReaderMetadata {
        let mut file = LocalParquetFile::open(path).await.unwrap();
        footer(path, &mut file).await.unwrap()
    }

    #[tokio::test]
    async fn a_footer_is_parsed_once_per_file_version() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("shard.parquet");
        write(&path, 10);
        let first = read(&path).await;
        let again = read(&path).await;
        assert!(Arc::ptr_eq(first.metadata(), again.metadata()));
        assert!(
            first.metadata().column_index().is_some(),
            "page index loaded"
        );

        write(&path, 20);
        let rewritten = read(&path).await;
        assert_eq!(rewritten.metadata().file_metadata().num_rows(), 20);
    }
}
