"""5. Compliance: the policy rules (POLICY.md) and the violations ledger."""
