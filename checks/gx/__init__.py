"""Great Expectations: the runner that validates pandas frames pulled from DuckDB, and the suite builder."""
