"""The stores: SQLModel tables (models), the database and its migrations (db), and the
one ticket service every writer goes through (service)."""

from bot.store import chat_delivery  # noqa: E402,F401 - registers its table on SQLModel.metadata
