"""``python -m eslt_cli``: the same as the ``eslt`` console script."""

from eslt_cli.cli import main

main()
