"""7. Reports: the day's page, summary.json, CSVs and SHA-256 manifest."""
