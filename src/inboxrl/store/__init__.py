"""The mail store: parsing real mail, keeping it in SQLite with a full-text index, and the one way to read it
(`access.Store`)."""
