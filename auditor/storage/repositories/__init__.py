"""Repositories: the SQL of each service area, one module per area.

A function that takes a ``store`` runs in a session (and, for writes, a transaction) of its
own; a function that takes a ``session`` writes inside the caller's unit of work
(`auditor.storage.store.Store.transaction`), so that an action and its trail entry commit
together. Rows come back as the table objects of `auditor.storage.tables`, detached from their
session with their columns loaded.
"""
