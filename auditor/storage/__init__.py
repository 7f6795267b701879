"""Storage: the database engine, the tables and the repositories (`auditor.storage.store`)."""
