//! The executor's memory budget: one DataFusion memory pool shared by every task that runs
//! here, and a spill directory under the data dir for sorts, aggregations and joins.

use std::num::NonZeroUsize;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;

use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryPool, TrackConsumersPool};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};

use crate::error::ExecutorError;

/// How much memory plan stages may use, and whether they may spill beyond it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryConfig {
    /// Bytes all running tasks may hold together; `None` is unbounded.
    pub limit: Option<usize>,
    /// Whether operators that outgrow the limit write to disk instead of failing.
    pub spill: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            limit: None,
            spill: true,
        }
    }
}

/// The runtime every stage on this executor runs with. Spill files go to
/// `<data_dir>/spill`, emptied here because files left by a crash belong to no query.
pub fn runtime_env(
    data_dir: &Path,
    memory: &MemoryConfig,
) -> Result<Arc<RuntimeEnv>, ExecutorError> {
    let spill_dir = data_dir.join("spill");
    let io = |source| ExecutorError::Io {
        path: spill_dir.display().to_string(),
        source,
    };
    if spill_dir.exists() {
        std::fs::remove_dir_all(&spill_dir).map_err(io)?;
    }
    let mode = if memory.spill {
        std::fs::create_dir_all(&spill_dir).map_err(io)?;
        DiskManagerMode::Directories(vec![spill_dir.clone()])
    } else {
        DiskManagerMode::Disabled
    };
    let mut builder = RuntimeEnvBuilder::new()
        .with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode));
    if let Some(limit) = memory.limit {
        // Name the biggest consumers when a query does not fit.
        let pool: Arc<dyn MemoryPool> = Arc::new(TrackConsumersPool::new(
            FairSpillPool::new(limit),
            NonZeroUsize::new(3).expect("non-zero"),
        ));
        builder = builder.with_memory_pool(pool);
    }
    builder
        .build_arc()
        .map_err(|e| io(std::io::Error::other(e.to_string())))
}

/// A byte size such as `2GiB`, `512MiB`, `1.5G`, `800M` or `1048576`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteSize(pub usize);

impl FromStr for ByteSize {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(text.len());
        let (number, unit) = text.split_at(split);
        let number: f64 = number
            .parse()
            .map_err(|_| format!("'{text}' is not a size such as 2GiB or 512MiB"))?;
        let multiplier: f64 = match unit.trim().to_ascii_lowercase().as_str() {
            "" | "b" => 1.0,
            "k" | "kb" | "kib" => 1024.0,
            "m" | "mb" | "mib" => 1024.0 * 1024.0,
            "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
            "t" | "tb" | "tib" => 1024.0_f64.powi(4),
            other => return Err(format!("unknown size unit '{other}' in '{text}'")),
        };
        let bytes = number * multiplier;
        if bytes < 1.0 {
            return Err(format!("size '{text}' is less than one byte"));
        }
        Ok(Self(bytes as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_in_binary_units() {
        assert_eq!("2GiB".parse(), Ok(ByteSize(2 << 30)));
        assert_eq!("512MiB".parse(), Ok(ByteSize(512 << 20)));
        assert_eq!("1.5G".parse(), Ok(ByteSize(3 << 29)));
        assert_eq!("4096".parse(), Ok(ByteSize(4096)));
        assert!("2XB".parse::<ByteSize>().is_err());
        assert!("lots".parse::<ByteSize>().is_err());
        assert!("0".parse::<ByteSize>().is_err());
    }

    #[test]
    fn spill_directory_is_emptied_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join("spill/old-query");
        std::fs::create_dir_all(&stale).unwrap();
        runtime_env(dir.path(), &MemoryConfig::default()).unwrap();
        assert!(!stale.exists());
        assert!(dir.path().join("spill").exists());
    }
}
