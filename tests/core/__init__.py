"""Core state: accounts, consent history and CLUB membership (assets/core/)."""
