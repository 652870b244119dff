//! The project's Python venv (DuckDB for the benchmark, the ADBC driver and pytest for the
//! client tests), made on first use by `scripts/python-venv.sh`.

use std::path::Path;
use std::process::Command;

use crate::local_cluster::Error;

/// The venv's python, made by `scripts/python-venv.sh` (found next to the current directory's
/// checkout).
pub fn venv_python(repo: &Path) -> Result<String, Error> {
    let script = repo.join("scripts/python-venv.sh");
    if !script.exists() {
        return Err(format!(
            "{} not found (run from the repository root)",
            script.display()
        )
        .into());
    }
    let output = Command::new("bash").arg(&script).output()?;
    if !output.status.success() {
        return Err(format!(
            "{} failed: {}",
            script.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}
