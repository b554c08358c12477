"""The local replica: a SQLite file (sqlite-utils, FTS5), the outbox of pending writes, conflicts,
and a diskcache of hot assembled objects. Imports neither Textual nor httpx."""
