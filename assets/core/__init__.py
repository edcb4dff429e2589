"""3. Core: accounts, the consent history and CLUB membership as of the end of the day."""
