//! TPC-H data generated in-process (tpchgen) as Parquet files, and Shoal's DDL for its tables.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use shoal_flight::wire_types::{cast_batch, plain_schema};
use tpchgen::generators::{
    CustomerGenerator, LineItemGenerator, NationGenerator, OrderGenerator, PartGenerator,
    PartSuppGenerator, RegionGenerator, SupplierGenerator,
};
use tpchgen_arrow::{
    CustomerArrow, LineItemArrow, NationArrow, OrderArrow, PartArrow, PartSuppArrow,
    RecordBatchIterator, RegionArrow, SupplierArrow,
};

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The TPC-H tables, smallest first.
pub const TABLES: [&str; 8] = [
    "region", "nation", "supplier", "customer", "part", "partsupp", "orders", "lineitem",
];

/// `CREATE TABLE` for a TPC-H table: big tables hash-distributed on their key (orders and
/// lineitem on the order key, so they are co-partitioned), nation and region replicated.
pub fn create_table_sql(table: &str) -> &'static str {
    match table {
        "region" => {
            "CREATE TABLE region (r_regionkey BIGINT NOT NULL, r_name VARCHAR NOT NULL, r_comment VARCHAR NOT NULL)"
        }
        "nation" => {
            "CREATE TABLE nation (n_nationkey BIGINT NOT NULL, n_name VARCHAR NOT NULL, n_regionkey BIGINT NOT NULL, n_comment VARCHAR NOT NULL)"
        }
        "supplier" => {
            "CREATE TABLE supplier (s_suppkey BIGINT NOT NULL, s_name VARCHAR NOT NULL, s_address VARCHAR NOT NULL, s_nationkey BIGINT NOT NULL, s_phone VARCHAR NOT NULL, s_acctbal DECIMAL(15,2) NOT NULL, s_comment VARCHAR NOT NULL) WITH (distribution = 's_suppkey')"
        }
        "customer" => {
            "CREATE TABLE customer (c_custkey BIGINT NOT NULL, c_name VARCHAR NOT NULL, c_address VARCHAR NOT NULL, c_nationkey BIGINT NOT NULL, c_phone VARCHAR NOT NULL, c_acctbal DECIMAL(15,2) NOT NULL, c_mktsegment VARCHAR NOT NULL, c_comment VARCHAR NOT NULL) WITH (distribution = 'c_custkey')"
        }
        "part" => {
            "CREATE TABLE part (p_partkey BIGINT NOT NULL, p_name VARCHAR NOT NULL, p_mfgr VARCHAR NOT NULL, p_brand VARCHAR NOT NULL, p_type VARCHAR NOT NULL, p_size INT NOT NULL, p_container VARCHAR NOT NULL, p_retailprice DECIMAL(15,2) NOT NULL, p_comment VARCHAR NOT NULL) WITH (distribution = 'p_partkey')"
        }
        "partsupp" => {
            "CREATE TABLE partsupp (ps_partkey BIGINT NOT NULL, ps_suppkey BIGINT NOT NULL, ps_availqty INT NOT NULL, ps_supplycost DECIMAL(15,2) NOT NULL, ps_comment VARCHAR NOT NULL) WITH (distribution = 'ps_partkey')"
        }
        "orders" => {
            "CREATE TABLE orders (o_orderkey BIGINT NOT NULL, o_custkey BIGINT NOT NULL, o_orderstatus VARCHAR NOT NULL, o_totalprice DECIMAL(15,2) NOT NULL, o_orderdate DATE NOT NULL, o_orderpriority VARCHAR NOT NULL, o_clerk VARCHAR NOT NULL, o_shippriority INT NOT NULL, o_comment VARCHAR NOT NULL) WITH (distribution = 'o_orderkey')"
        }
        "lineitem" => {
            "CREATE TABLE lineitem (l_orderkey BIGINT NOT NULL, l_partkey BIGINT NOT NULL, l_suppkey BIGINT NOT NULL, l_linenumber INT NOT NULL, l_quantity DECIMAL(15,2) NOT NULL, l_extendedprice DECIMAL(15,2) NOT NULL, l_discount DECIMAL(15,2) NOT NULL, l_tax DECIMAL(15,2) NOT NULL, l_returnflag VARCHAR NOT NULL, l_linestatus VARCHAR NOT NULL, l_shipdate DATE NOT NULL, l_commitdate DATE NOT NULL, l_receiptdate DATE NOT NULL, l_shipinstruct VARCHAR NOT NULL, l_shipmode VARCHAR NOT NULL, l_comment VARCHAR NOT NULL) WITH (distribution = 'l_orderkey')"
        }
        other => panic!("not a TPC-H table: {other}"),
    }
}

fn batches(table: &str, scale: f64) -> Box<dyn RecordBatchIterator> {
    match table {
        "region" => Box::new(RegionArrow::new(RegionGenerator::new(scale, 1, 1))),
        "nation" => Box::new(NationArrow::new(NationGenerator::new(scale, 1, 1))),
        "supplier" => Box::new(SupplierArrow::new(SupplierGenerator::new(scale, 1, 1))),
        "customer" => Box::new(CustomerArrow::new(CustomerGenerator::new(scale, 1, 1))),
        "part" => Box::new(PartArrow::new(PartGenerator::new(scale, 1, 1))),
        "partsupp" => Box::new(PartSuppArrow::new(PartSuppGenerator::new(scale, 1, 1))),
        "orders" => Box::new(OrderArrow::new(OrderGenerator::new(scale, 1, 1))),
        "lineitem" => Box::new(LineItemArrow::new(LineItemGenerator::new(scale, 1, 1))),
        other => panic!("not a TPC-H table: {other}"),
    }
}

/// Path of a table's Parquet file under `dir`.
pub fn parquet_path(dir: &Path, table: &str) -> PathBuf {
    dir.join(format!("{table}.parquet"))
}

/// Writes every TPC-H table at `scale` as `dir/<table>.parquet` with plain (non-view) string
/// types. Files already complete are kept, so a second run is instant.
pub fn generate_parquet(dir: &Path, scale: f64) -> Result<(), Error> {
    std::fs::create_dir_all(dir)?;
    for table in TABLES {
        let path = parquet_path(dir, table);
        if path.exists() {
            continue;
        }
        let tmp = path.with_extension("parquet.tmp");
        let iter = batches(table, scale);
        let schema: SchemaRef = plain_schema(iter.schema());
        let props = WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(1)?))
            .build();
        let mut writer =
            ArrowWriter::try_new(File::create(&tmp)?, Arc::clone(&schema), Some(props))?;
        for batch in iter {
            writer.write(&cast_batch(&batch, &schema)?)?;
        }
        writer.close()?;
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}

/// The 22 TPC-H query texts (`benches/tpch/queries/qNN.sql`, built into the binary) with their
/// substitution parameters for `scale` (Q11's FRACTION is 0.0001 / SF, as the specification
/// scales it).
pub fn queries(scale: f64) -> Vec<(String, String)> {
    QUERY_TEXTS
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let sql = text.replace("__FRACTION__", &format!("{}", 0.0001 / scale));
            (format!("q{:02}", i + 1), sql)
        })
        .collect()
}

macro_rules! query_texts {
    ($($n:literal),*) => {
        [$(include_str!(concat!("../benches/tpch/queries/q", $n, ".sql"))),*]
    };
}

const QUERY_TEXTS: [&str; 22] = query_texts!(
    "01", "02", "03", "04", "05", "06", "07", "08", "09", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22"
);
