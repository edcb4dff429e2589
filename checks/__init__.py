"""The nightly asset checks, one module per area of assets/ (SQL and GX alike), named as facts.

`nightly.py` applies the defaults every check shares and records each outcome in
ops.check_results; `gx/` runs Great Expectations suites on frames pulled from DuckDB.
"""
