"""Whole-night properties that span areas: crash safety, re-runs, no personal data leaks, concurrency."""
