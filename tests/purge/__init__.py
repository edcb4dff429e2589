"""Purge: the erasure scan and the purge of erased identifiers wherever they stand (assets/purge/)."""
