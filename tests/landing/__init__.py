"""Landing: ingestion of the arrival-day event files and the downstream exports (assets/landing/)."""
