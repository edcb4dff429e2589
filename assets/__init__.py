"""The nightly assets, one folder per stage of the data flow. Folder = Dagster group = key prefix.

1. `landing/`     the arrival day's events and the systems' exports, validated and keyed
2. `purge/`       erased subjects' identifiers leave the warehouse and the inbox
3. `core/`        accounts, consent history and CLUB membership as of the end of the day
4. `erasure/`     raw retention, then the register that verifies every copy
5. `compliance/`  the policy rules and the violations ledger
6. `compaction/`  the warehouse copied into a fresh file: erased bytes are gone
7. `reports/`     the day's report files

A later stage may import an earlier one, never the reverse (the import-linter contract in
pyproject.toml). `defaults.py` holds what every asset shares.
"""
