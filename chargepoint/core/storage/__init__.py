"""Storage: the state database, its schema and files, and the outbox of transaction messages."""
