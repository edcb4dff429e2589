"""The nightly compliance report: HTML page, summary.json, CSVs and a SHA-256 manifest per day."""
