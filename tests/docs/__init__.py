"""The docs stay true: the README's "Where is …" tables name files, symbols and tests that exist."""
