"""Reports: the compliance report, its files safety check and the page in a browser (assets/reports/)."""
