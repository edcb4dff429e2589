"""Checks: the Great Expectations suites and their Dagster checks (checks/gx/, checks/<area>.py)."""
