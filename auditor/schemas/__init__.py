"""Every data shape that crosses a boundary (bundle, spec, results, API, task messages), versioned.

Schemas import nothing else from the project but each other.
"""
