"""Helpers shared by the tests (no test module imports another): real services for the
integration lane (`services`), simulated specs and worlds, the API's recording dispatcher, a
webhook receiver, and report fixtures."""
