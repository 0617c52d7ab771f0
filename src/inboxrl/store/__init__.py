"""The mail store: parsing real mail and keeping it in SQLite with a full-text index."""
