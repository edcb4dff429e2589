"""Compliance: the policy rules and the violations ledger (assets/compliance/)."""
