//! The benchmark's output: a table on stdout and CSV files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bench::latency::{LatencyResult, StreamResult};
use crate::bench::stats::geometric_mean;
use crate::local_cluster::Error;

pub struct QueryRow {
    pub name: String,
    pub rows: usize,
    /// Whether Shoal's rows equal single-node DataFusion's.
    pub matches: bool,
    pub shoal: Duration,
    pub datafusion: Duration,
    pub duckdb: Option<Duration>,
}

pub struct Report {
    pub scale: f64,
    pub executors: usize,
    pub queries: Vec<QueryRow>,
    pub latency: Vec<LatencyResult>,
    pub stream: Option<StreamResult>,
    pub notes: Vec<String>,
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn ratio(a: Duration, b: Duration) -> f64 {
    if b.is_zero() {
        0.0
    } else {
        a.as_secs_f64() / b.as_secs_f64()
    }
}

impl Report {
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "\nTPC-H scale {} on {} executors (median of the timed runs, ms)\n",
            self.scale, self.executors
        );
        let _ = writeln!(
            out,
            "{:<6} {:>10} {:>12} {:>10} {:>10} {:>10} {:>9} {:>6}",
            "query", "shoal", "datafusion", "duckdb", "shoal/df", "shoal/duck", "rows", "same"
        );
        for q in &self.queries {
            let duck = q
                .duckdb
                .map_or("-".to_string(), |d| format!("{:.1}", ms(d)));
            let vs_duck = q
                .duckdb
                .map_or("-".to_string(), |d| format!("{:.2}", ratio(q.shoal, d)));
            let _ = writeln!(
                out,
                "{:<6} {:>10.1} {:>12.1} {:>10} {:>10.2} {:>10} {:>9} {:>6}",
                q.name,
                ms(q.shoal),
                ms(q.datafusion),
                duck,
                ratio(q.shoal, q.datafusion),
                vs_duck,
                q.rows,
                if q.matches { "yes" } else { "NO" }
            );
        }
        let total = |f: &dyn Fn(&QueryRow) -> Option<Duration>| -> Option<Duration> {
            self.queries.iter().map(f).sum()
        };
        let shoal = total(&|q| Some(q.shoal)).unwrap_or_default();
        let datafusion = total(&|q| Some(q.datafusion)).unwrap_or_default();
        let duckdb = total(&|q| q.duckdb);
        let _ = writeln!(
            out,
            "{:<6} {:>10.1} {:>12.1} {:>10} {:>10.2} {:>10}",
            "total",
            ms(shoal),
            ms(datafusion),
            duckdb.map_or("-".to_string(), |d| format!("{:.1}", ms(d))),
            ratio(shoal, datafusion),
            duckdb.map_or("-".to_string(), |d| format!("{:.2}", ratio(shoal, d))),
        );
        let geo = |f: &dyn Fn(&QueryRow) -> Option<f64>| {
            geometric_mean(&self.queries.iter().filter_map(f).collect::<Vec<_>>())
        };
        let _ = writeln!(
            out,
            "{:<6} {:>10.1} {:>12.1} {:>10} {:>10.2} {:>10}",
            "geomean",
            geo(&|q| Some(ms(q.shoal))),
            geo(&|q| Some(ms(q.datafusion))),
            if duckdb.is_some() {
                format!("{:.1}", geo(&|q| q.duckdb.map(ms)))
            } else {
                "-".into()
            },
            geo(&|q| Some(ratio(q.shoal, q.datafusion))),
            if duckdb.is_some() {
                format!("{:.2}", geo(&|q| q.duckdb.map(|d| ratio(q.shoal, d))))
            } else {
                "-".into()
            },
        );
        let worst = self
            .queries
            .iter()
            .max_by(|a, b| ratio(a.shoal, a.datafusion).total_cmp(&ratio(b.shoal, b.datafusion)));
        if let Some(w) = worst {
            let _ = writeln!(
                out,
                "slowest relative to DataFusion: {} at {:.2}x",
                w.name,
                ratio(w.shoal, w.datafusion)
            );
        }
        if !self.latency.is_empty() {
            let _ = writeln!(out, "\nShort queries over Flight SQL (ms)\n");
            let _ = writeln!(
                out,
                "{:<22} {:>8} {:>9} {:>8} {:>8}",
                "query", "clients", "requests", "p50", "p99"
            );
            for l in &self.latency {
                let _ = writeln!(
                    out,
                    "{:<22} {:>8} {:>9} {:>8.2} {:>8.2}",
                    l.name,
                    l.clients,
                    l.requests,
                    ms(l.p50),
                    ms(l.p99)
                );
            }
        }
        if let Some(s) = &self.stream {
            let _ = writeln!(
                out,
                "\nStreaming lineitem: {} rows in {:.2} s = {:.2} M rows/s, {:.1} MB/s (Arrow bytes)",
                s.rows,
                s.elapsed.as_secs_f64(),
                s.rows_per_second() / 1e6,
                s.mb_per_second()
            );
        }
        for note in &self.notes {
            let _ = writeln!(out, "{note}");
        }
        out
    }

    pub fn print(&self) {
        println!("{}", self.render());
    }

    /// Writes `tpch-sf<scale>-queries.csv` and `tpch-sf<scale>-latency.csv` under `dir`.
    pub fn write_csv(&self, dir: &Path) -> Result<Vec<PathBuf>, Error> {
        std::fs::create_dir_all(dir)?;
        let queries_path = dir.join(format!("tpch-sf{}-queries.csv", self.scale));
        let mut csv = String::from(
            "query,shoal_ms,datafusion_ms,duckdb_ms,shoal_over_datafusion,shoal_over_duckdb,rows,same_as_datafusion\n",
        );
        for q in &self.queries {
            let _ = writeln!(
                csv,
                "{},{:.3},{:.3},{},{:.4},{},{},{}",
                q.name,
                ms(q.shoal),
                ms(q.datafusion),
                q.duckdb.map_or(String::new(), |d| format!("{:.3}", ms(d))),
                ratio(q.shoal, q.datafusion),
                q.duckdb
                    .map_or(String::new(), |d| format!("{:.4}", ratio(q.shoal, d))),
                q.rows,
                q.matches
            );
        }
        std::fs::write(&queries_path, csv)?;
        let mut written = vec![queries_path];
        if !self.latency.is_empty() || self.stream.is_some() {
            let path = dir.join(format!("tpch-sf{}-latency.csv", self.scale));
            let mut csv =
                String::from("measure,clients,requests,p50_ms,p99_ms,rows_per_s,mb_per_s\n");
            for l in &self.latency {
                let _ = writeln!(
                    csv,
                    "{},{},{},{:.3},{:.3},,",
                    l.name,
                    l.clients,
                    l.requests,
                    ms(l.p50),
                    ms(l.p99)
                );
            }
            if let Some(s) = &self.stream {
                let _ = writeln!(
                    csv,
                    "stream lineitem,1,1,,,{:.0},{:.2}",
                    s.rows_per_second(),
                    s.mb_per_second()
                );
            }
            std::fs::write(&path, csv)?;
            written.push(path);
        }
        Ok(written)
    }
}
