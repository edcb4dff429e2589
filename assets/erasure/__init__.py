"""4. Erasure: raw retention, then the register that verifies every copy of every erased
subject (warehouse, inbox, the systems' latest exports) against the one-month deadline."""
