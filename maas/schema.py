"""Every table the application knows, for Alembic and the tests."""

from __future__ import annotations

import importlib

MODEL_MODULES = ("maas.models", "ticketing.models", "ticketing.models_face", "clearing.models", "maas.stations")


def import_all_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)
