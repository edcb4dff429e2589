"""Compaction: byte-level erasure by compaction into a fresh file (pipelines/warehouse/compaction.py)."""
