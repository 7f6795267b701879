"""Services: the only home of business rules (audits and their state machine, planning,
schedules, drift, governance, signing and the trail, keys). The API, the CLI and the worker
tasks are thin shells over these modules.
"""
