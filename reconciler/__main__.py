"""`python -m reconciler`: the same entry point as the `reconcile` command."""

from reconciler.cli import entry

entry()
