"""`python -m auditor.cli`: the same command line as the `auditor` console script."""

from auditor.cli.main import main

main()
