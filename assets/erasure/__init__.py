"""Erasure (GDPR Art. 17): purge erased subjects, raw retention, the verifier and byte-level compaction."""
