"""The serving copy BI tools read: serving/analytics.duckdb and serving/parquet/, after every build."""
