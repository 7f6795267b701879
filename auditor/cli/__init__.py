"""The `auditor` command line: a thin shell over the services, one module per command group.

`app` is the console-script entry (`auditor = "auditor.cli:app"`); `python -m auditor.cli` runs it
too (see `__main__.py`).
"""

from auditor.cli.main import app

__all__ = ["app"]
