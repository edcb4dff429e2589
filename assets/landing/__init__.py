"""1. Landing: the arrival day's event files (CONTRACT 2.1) and the systems' exports (2.2),
validated, deduplicated and keyed."""
