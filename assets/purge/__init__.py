"""2. Purge (GDPR Art. 17): the identifiers of subjects erased by the end of the day leave the
warehouse and the inbox before anything is derived from them."""
