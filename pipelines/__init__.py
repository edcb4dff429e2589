"""Consent and account compliance pipeline: Definitions, jobs, schedules, sensors, CLI."""
