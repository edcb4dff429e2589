"""Core state as of the end of day D: accounts, the consent history and CLUB membership."""
