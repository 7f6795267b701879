"""One router per resource: evaluations, audits, and the operations endpoints."""
