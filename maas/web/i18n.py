"""Interface texts in zh-CN (default) and English; the switch is ``?lang=en|zh-CN`` (kept in a cookie)."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

LANGUAGES = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"
_DIR = Path(__file__).parent / "messages"


@cache
def messages(lang: str) -> dict[str, str]:
    """The texts of a language, falling back key by key to zh-CN."""
    base = json.loads((_DIR / "zh-CN.json").read_text(encoding="utf-8"))
    if lang != DEFAULT_LANGUAGE:
        base = {**base, **json.loads((_DIR / f"{lang}.json").read_text(encoding="utf-8"))}
    return base


def pick_language(query: str | None, cookie: str | None, accept: str | None) -> str:
    for candidate in (query, cookie):
        if candidate in LANGUAGES:
            return candidate
    if accept and accept.lower().startswith("en"):
        return "en"
    return DEFAULT_LANGUAGE
