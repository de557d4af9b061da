"""Every table the application knows, for Alembic and the tests."""

from __future__ import annotations

import importlib

MODEL_MODULES = ("maas.models", "ticketing.models", "clearing.models")


def import_all_models() -> None:
    for name in MODEL_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            # A domain package without tables yet; any other import error is a bug and propagates.
            if exc.name != name:
                raise
