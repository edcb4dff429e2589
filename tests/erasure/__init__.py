"""Erasure: the erasure flow night by night, the verifier and register, raw retention (assets/erasure/)."""
