"""The benchmark's own arithmetic: what it reports as met or missed (bench/run.py)."""
