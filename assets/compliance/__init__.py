"""Compliance: the rule registry and the violations ledger."""
