"""Generate the OpenAPI document: ``python -m maas.openapi openapi/openapi.json``.

The checked-in document is the public contract's full form; a test fails when
it drifts from what the app produces.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any


def build_openapi() -> dict[str, Any]:
    from maas.app import create_app
    from maas.settings import load_settings

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(load_settings(environment="test", data_dir=Path(tmp)))
        return app.openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    text = render(build_openapi())
    if argv:
        Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
