"""The store: tables, engine and migrations. The same code runs on SQLite and PostgreSQL."""
