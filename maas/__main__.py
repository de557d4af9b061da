"""`python -m maas` runs the CLI."""

from maas.cli import _entry

_entry()
