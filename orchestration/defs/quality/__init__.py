"""Great Expectations suites on the marts, wired as blocking Dagster asset checks."""
