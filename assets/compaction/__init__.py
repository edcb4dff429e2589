"""6. Compaction: after the night's last writer, the warehouse is copied into a fresh file, so
erased values leave no bytes behind."""
