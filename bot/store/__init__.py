"""The stores: SQLModel tables (models), the database and its migrations (db), and the
one ticket service every writer goes through (service)."""
