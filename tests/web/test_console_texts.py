"""The consoles' texts: every key the operator and regulator pages use exists in both languages (no raw key on
screen), and the pages render in each (no browser)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

WEB = Path(__file__).resolve().parents[2] / "maas" / "web"
FILES = ["templates/operator.html", "templates/regulator.html", "static/operator.js", "static/regulator.js"]
# t["key"] / t['key'] in templates, MaaS.t('key' / "key" in scripts and attributes
KEY = re.compile(r"""\bt\[\s*["']([a-z_]+\.[a-z0-9_]+)["']\s*\]|MaaS\.t\(\s*["']([a-z_]+\.[a-z0-9_]+)["']""")


def _keys() -> set[str]:
    found: set[str] = set()
    for name in FILES:
        text = (WEB / name).read_text(encoding="utf-8")
        # a key ending in "_" is a prefix completed at run time (below)
        found |= {k for a, b in KEY.findall(text) if not (k := a or b).endswith("_")}
        # keys built in templates: t["op." ~ k] over a literal list
        for items, prefix in re.findall(r"""for k in \[([^\]]+)\][^%]*%\}.*?t\["([a-z]+\.)" ~ k\]""", text):
            found |= {prefix + k for k in re.findall(r'"([a-z_]+)"', items)}
        # MaaS.t('op.st_' + d.status): the dispute statuses
        if "'op.st_' +" in text:
            found |= {f"op.st_{s}" for s in ("open", "accepted", "rejected")}
    return found


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
def test_every_console_text_exists(lang: str) -> None:
    texts = json.loads((WEB / "messages" / f"{lang}.json").read_text(encoding="utf-8"))
    keys = _keys()
    assert len(keys) > 100
    assert {"op.stats", "op.chart_revenue", "reg.map", "op.net", "op.st_open"} <= keys
    missing = sorted(k for k in keys if k not in texts)
    assert not missing, f"texts missing in {lang}.json: {missing}"


def test_both_languages_have_the_same_keys() -> None:
    en = json.loads((WEB / "messages" / "en.json").read_text(encoding="utf-8"))
    zh = json.loads((WEB / "messages" / "zh-CN.json").read_text(encoding="utf-8"))
    assert sorted(set(en) ^ set(zh)) == []


def test_console_pages_render_in_each_language(client) -> None:  # noqa: ANN001
    assert "验票量与收入" in client.get("/app/operator").text
    assert "Validations and revenue" in client.get("/app/operator?lang=en").text
    assert "站点电子客票覆盖地图" in client.get("/app/regulator?lang=zh-CN").text
    assert "Stations by e-ticket coverage" in client.get("/app/regulator?lang=en").text
