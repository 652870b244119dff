//! What Flight SQL clients ask about the server before they run anything: `GetSqlInfo`,
//! `GetXdbcTypeInfo`, and the key commands (Shoal has no primary or foreign keys, so those
//! answer with empty results of the spec's schemas rather than errors).

use std::sync::{Arc, OnceLock};

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{
    Nullable, Searchable, SqlInfo, SqlNullOrdering, SqlOuterJoinsSupportLevel,
    SqlSupportedCaseSensitivity, SqlSupportedTransaction, XdbcDataType, XdbcDatetimeSubcode,
};

/// Every GetSqlInfo answer. JDBC reads them all once per connection; flightsql-dbapi reads
/// ids 0, 2, 3 and 504 by position, so those must be present.
pub fn sql_info() -> &'static SqlInfoData {
    static INFO: OnceLock<SqlInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = SqlInfoDataBuilder::new();
        b.append(SqlInfo::FlightSqlServerName, "Shoal");
        b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
        b.append(SqlInfo::FlightSqlServerArrowVersion, "1.3");
        b.append(SqlInfo::FlightSqlServerReadOnly, false);
        b.append(SqlInfo::FlightSqlServerSql, true);
        b.append(SqlInfo::FlightSqlServerSubstrait, false);
        b.append(
            SqlInfo::FlightSqlServerTransaction,
            SqlSupportedTransaction::None as i32,
        );
        b.append(SqlInfo::FlightSqlServerCancel, true);
        b.append(SqlInfo::FlightSqlServerBulkIngestion, true);
        b.append(SqlInfo::FlightSqlServerIngestTransactionsSupported, false);
        b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
        b.append(SqlInfo::FlightSqlServerTransactionTimeout, 0i32);
        b.append(SqlInfo::SqlDdlCatalog, false);
        b.append(SqlInfo::SqlDdlSchema, false);
        b.append(SqlInfo::SqlDdlTable, true);
        b.append(
            SqlInfo::SqlIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityLowercase as i32,
        );
        b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
        b.append(
            SqlInfo::SqlQuotedIdentifierCase,
            SqlSupportedCaseSensitivity::SqlCaseSensitivityUnknown as i32,
        );
        b.append(SqlInfo::SqlAllTablesAreSelectable, true);
        b.append(
            SqlInfo::SqlNullOrdering,
            SqlNullOrdering::SqlNullsSortedHigh as i32,
        );
        b.append(SqlInfo::SqlKeywords, KEYWORDS);
        b.append(SqlInfo::SqlNumericFunctions, NUMERIC_FUNCTIONS);
        b.append(SqlInfo::SqlStringFunctions, STRING_FUNCTIONS);
        b.append(SqlInfo::SqlSystemFunctions, SYSTEM_FUNCTIONS);
        b.append(SqlInfo::SqlDatetimeFunctions, DATETIME_FUNCTIONS);
        b.append(SqlInfo::SqlSearchStringEscape, "\\");
        b.append(SqlInfo::SqlExtraNameCharacters, "");
        b.append(SqlInfo::SqlSupportsColumnAliasing, true);
        b.append(SqlInfo::SqlNullPlusNullIsNull, true);
        b.append(SqlInfo::SqlSupportsTableCorrelationNames, true);
        b.append(SqlInfo::SqlSupportsDifferentTableCorrelationNames, false);
        b.append(SqlInfo::SqlSupportsExpressionsInOrderBy, true);
        b.append(SqlInfo::SqlSupportsOrderByUnrelated, true);
        // Bitmasks: bit n set means the enum value n is supported.
        b.append(SqlInfo::SqlSupportedGroupBy, 0b11i32); // unrelated, beyond select
        b.append(SqlInfo::SqlSupportsLikeEscapeClause, true);
        b.append(SqlInfo::SqlSupportsNonNullableColumns, true);
        b.append(SqlInfo::SqlSupportedGrammar, 0b011i32); // minimum, core
        b.append(SqlInfo::SqlAnsi92SupportedLevel, 0b001i32); // entry
        b.append(SqlInfo::SqlSupportsIntegrityEnhancementFacility, false);
        b.append(
            SqlInfo::SqlOuterJoinsSupportLevel,
            SqlOuterJoinsSupportLevel::SqlFullOuterJoins as i32,
        );
        b.append(SqlInfo::SqlSchemaTerm, "schema");
        b.append(SqlInfo::SqlProcedureTerm, "procedure");
        b.append(SqlInfo::SqlCatalogTerm, "catalog");
        b.append(SqlInfo::SqlCatalogAtStart, true);
        b.append(SqlInfo::SqlSchemasSupportedActions, 0i32);
        b.append(SqlInfo::SqlCatalogsSupportedActions, 0i32);
        b.append(SqlInfo::SqlSupportedPositionedCommands, 0i32);
        b.append(SqlInfo::SqlSelectForUpdateSupported, false);
        b.append(SqlInfo::SqlStoredProceduresSupported, false);
        b.append(SqlInfo::SqlSupportedSubqueries, 0b1111i32); // comparisons, EXISTS, IN, ANY/ALL
        b.append(SqlInfo::SqlCorrelatedSubqueriesSupported, true);
        b.append(SqlInfo::SqlSupportedUnions, 0b11i32); // UNION, UNION ALL
        // Limits: 0 means none or unknown.
        for limit in [
            SqlInfo::SqlMaxBinaryLiteralLength,
            SqlInfo::SqlMaxCharLiteralLength,
            SqlInfo::SqlMaxColumnNameLength,
            SqlInfo::SqlMaxColumnsInGroupBy,
            SqlInfo::SqlMaxColumnsInIndex,
            SqlInfo::SqlMaxColumnsInOrderBy,
            SqlInfo::SqlMaxColumnsInSelect,
            SqlInfo::SqlMaxColumnsInTable,
            SqlInfo::SqlMaxConnections,
            SqlInfo::SqlMaxCursorNameLength,
            SqlInfo::SqlMaxIndexLength,
            SqlInfo::SqlDbSchemaNameLength,
            SqlInfo::SqlMaxProcedureNameLength,
            SqlInfo::SqlMaxCatalogNameLength,
            SqlInfo::SqlMaxRowSize,
            SqlInfo::SqlMaxStatementLength,
            SqlInfo::SqlMaxStatements,
            SqlInfo::SqlMaxTableNameLength,
            SqlInfo::SqlMaxTablesInSelect,
            SqlInfo::SqlMaxUsernameLength,
        ] {
            b.append(limit, 0i64);
        }
        b.append(SqlInfo::SqlMaxRowSizeIncludesBlobs, true);
        b.append(SqlInfo::SqlDefaultTransactionIsolation, 0i32); // none
        b.append(SqlInfo::SqlTransactionsSupported, false);
        b.append(SqlInfo::SqlSupportedTransactionsIsolationLevels, 0i32);
        b.append(SqlInfo::SqlDataDefinitionCausesTransactionCommit, false);
        b.append(SqlInfo::SqlDataDefinitionsInTransactionsIgnored, true);
        b.append(SqlInfo::SqlSupportedResultSetTypes, 0b10i32); // forward only
        b.append(SqlInfo::SqlBatchUpdatesSupported, false);
        b.append(SqlInfo::SqlSavepointsSupported, false);
        b.append(SqlInfo::SqlNamedParametersSupported, false);
        b.append(SqlInfo::SqlLocatorsUpdateCopy, false);
        b.append(SqlInfo::SqlStoredFunctionsUsingCallSyntaxSupported, false);
        b.build().expect("static SqlInfo is valid")
    })
}

/// Shoal's words that are not SQL:2003 keywords.
const KEYWORDS: &[&str] = &[
    "analyze",
    "distribution",
    "explain",
    "replication",
    "shards",
];
const NUMERIC_FUNCTIONS: &[&str] = &[
    "abs",
    "acos",
    "acosh",
    "asin",
    "asinh",
    "atan",
    "atan2",
    "atanh",
    "cbrt",
    "ceil",
    "cos",
    "cosh",
    "cot",
    "degrees",
    "exp",
    "factorial",
    "floor",
    "gcd",
    "isnan",
    "iszero",
    "lcm",
    "ln",
    "log",
    "log10",
    "log2",
    "nanvl",
    "pi",
    "power",
    "radians",
    "random",
    "round",
    "signum",
    "sin",
    "sinh",
    "sqrt",
    "tan",
    "tanh",
    "trunc",
];
const STRING_FUNCTIONS: &[&str] = &[
    "ascii",
    "bit_length",
    "btrim",
    "char_length",
    "character_length",
    "chr",
    "concat",
    "concat_ws",
    "ends_with",
    "initcap",
    "left",
    "length",
    "lower",
    "lpad",
    "ltrim",
    "octet_length",
    "overlay",
    "position",
    "regexp_like",
    "regexp_match",
    "regexp_replace",
    "repeat",
    "replace",
    "reverse",
    "right",
    "rpad",
    "rtrim",
    "split_part",
    "starts_with",
    "strpos",
    "substr",
    "substring",
    "translate",
    "trim",
    "upper",
];
const SYSTEM_FUNCTIONS: &[&str] = &["arrow_typeof", "coalesce", "nullif", "nvl", "version"];
const DATETIME_FUNCTIONS: &[&str] = &[
    "current_date",
    "current_time",
    "current_timestamp",
    "date_bin",
    "date_part",
    "date_trunc",
    "extract",
    "from_unixtime",
    "make_date",
    "now",
    "to_char",
    "to_date",
    "to_timestamp",
    "to_unixtime",
];

/// The SQL types Shoal stores, for `GetXdbcTypeInfo` (JDBC's `getTypeInfo`).
pub fn xdbc_type_info() -> &'static XdbcTypeInfoData {
    static INFO: OnceLock<XdbcTypeInfoData> = OnceLock::new();
    INFO.get_or_init(|| {
        let mut b = XdbcTypeInfoDataBuilder::new();
        let numeric = |name: &str, data_type: XdbcDataType, size: i32| XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            column_size: Some(size),
            nullable: Nullable::NullabilityNullable,
            searchable: Searchable::Full,
            unsigned_attribute: Some(false),
            auto_increment: Some(false),
            local_type_name: Some(name.into()),
            sql_data_type: data_type,
            num_prec_radix: Some(10),
            ..Default::default()
        };
        let quoted = |name: &str, data_type: XdbcDataType, prefix: &str| XdbcTypeInfo {
            type_name: name.into(),
            data_type,
            literal_prefix: Some(prefix.into()),
            literal_suffix: Some("'".into()),
            nullable: Nullable::NullabilityNullable,
            case_sensitive: true,
            searchable: Searchable::Full,
            local_type_name: Some(name.into()),
            sql_data_type: data_type,
            ..Default::default()
        };
        b.append(numeric("BOOLEAN", XdbcDataType::XdbcBit, 1));
        b.append(numeric("TINYINT", XdbcDataType::XdbcTinyint, 3));
        b.append(numeric("SMALLINT", XdbcDataType::XdbcSmallint, 5));
        b.append(numeric("INTEGER", XdbcDataType::XdbcInteger, 10));
        b.append(numeric("BIGINT", XdbcDataType::XdbcBigint, 19));
        b.append(numeric("REAL", XdbcDataType::XdbcReal, 7));
        b.append(numeric("DOUBLE", XdbcDataType::XdbcDouble, 15));
        b.append(XdbcTypeInfo {
            create_params: Some(vec!["precision".into(), "scale".into()]),
            fixed_prec_scale: true,
            minimum_scale: Some(0),
            maximum_scale: Some(38),
            ..numeric("DECIMAL", XdbcDataType::XdbcDecimal, 38)
        });
        b.append(quoted("VARCHAR", XdbcDataType::XdbcVarchar, "'"));
        b.append(quoted("BYTEA", XdbcDataType::XdbcVarbinary, "X'"));
        b.append(XdbcTypeInfo {
            column_size: Some(10),
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeUnknown),
            ..quoted("DATE", XdbcDataType::XdbcDate, "DATE '")
        });
        b.append(XdbcTypeInfo {
            column_size: Some(29),
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestamp),
            ..quoted("TIMESTAMP", XdbcDataType::XdbcTimestamp, "TIMESTAMP '")
        });
        b.append(XdbcTypeInfo {
            column_size: Some(35),
            datetime_subcode: Some(XdbcDatetimeSubcode::XdbcSubcodeTimestampWithTimezone),
            ..quoted(
                "TIMESTAMP WITH TIME ZONE",
                XdbcDataType::XdbcTimestamp,
                "TIMESTAMP '",
            )
        });
        b.build().expect("static XdbcTypeInfo is valid")
    })
}

/// GetPrimaryKeys' result schema, from FlightSql.proto.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The result schema of GetImportedKeys, GetExportedKeys and GetCrossReference.
pub fn foreign_keys_schema() -> SchemaRef {
    let name = |n: &str, nullable| Field::new(n, DataType::Utf8, nullable);
    Arc::new(Schema::new(vec![
        name("pk_catalog_name", true),
        name("pk_db_schema_name", true),
        name("pk_table_name", false),
        name("pk_column_name", false),
        name("fk_catalog_name", true),
        name("fk_db_schema_name", true),
        name("fk_table_name", false),
        name("fk_column_name", false),
        Field::new("key_sequence", DataType::Int32, false),
        name("fk_key_name", true),
        name("pk_key_name", true),
        Field::new("update_rule", DataType::UInt8, false),
        Field::new("delete_rule", DataType::UInt8, false),
    ]))
}

/// No rows of `schema`.
pub fn empty(schema: SchemaRef) -> RecordBatch {
    RecordBatch::new_empty(schema)
}
