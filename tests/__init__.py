"""The test suite: one package per area of the data flow (landing ... reports), checks/, pipelines/,
generator/, bench/, and end_to_end/ for whole-night properties that span areas. Fixtures are in
tests/conftest.py, the helpers the modules share in tests/helpers.py (no test module imports another)."""
