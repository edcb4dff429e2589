"""The README's "Where is …" tables: every path, symbol and test they name exists, and every rule
of the registry has its row. A newcomer follows them to a rule's SQL, test and report text."""

from __future__ import annotations

import re
from pathlib import Path

from assets.compliance.rules import RULES

ROOT = Path(__file__).resolve().parents[2]


def _where_is() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## Where is …")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def _rows(section: str) -> list[list[str]]:
    return [
        [cell.strip() for cell in line.strip().strip("|").split("|")]
        for line in section.splitlines()
        if line.startswith("|") and not line.startswith("|---")
    ]


def test_every_named_path_and_test_exists():
    section = _where_is()
    named = re.findall(r"`([\w./-]+/|[\w./-]+\.(?:py|j2|sql|md)(?:::\w+)?)`", section)
    assert len(named) > 30
    missing = []
    for ref in named:
        path, _, test = ref.partition("::")
        if not (ROOT / path).exists():
            missing.append(ref)
        elif test and not re.search(rf"^def {test}\(", (ROOT / path).read_text(encoding="utf-8"), re.M):
            missing.append(ref)
    assert not missing, missing


def test_every_named_symbol_is_in_its_file():
    """`file.py` (`NAME`) pairs: the symbol is defined in that file."""
    pairs = re.findall(r"`([\w./-]+\.py)` \(`(\w+)`\)", _where_is())
    assert len(pairs) >= 6
    missing = [
        f"{path}: {name}"
        for path, name in pairs
        if not re.search(rf"^(?:def {name}\(|{name} = )", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert not missing, missing


def test_every_rule_has_its_sql_test_and_report_text_row():
    rows = {row[0].strip("`"): row for row in _rows(_where_is()) if row and row[0].startswith("`")}
    for rule in RULES:
        assert rule.id in rows, f"{rule.id} has no row"
        _, sql, test, report = rows[rule.id]
        assert "`assets/compliance/rules.py`" in sql
        assert "::test_" in test
        assert report == f"`#rule-{rule.id}`"
    # the page's section anchor is what the row names
    template = (ROOT / "assets/reports/templates/compliance_report.html.j2").read_text(encoding="utf-8")
    assert 'id="rule-{{ rule.id }}"' in template


def test_every_stage_folder_is_listed_in_flow_order():
    stages = [row for row in _rows(_where_is()) if row and re.match(r"\d ", row[0])]
    folders = [re.search(r"`assets/(\w+)/`", row[1]).group(1) for row in stages]
    assert folders == ["landing", "purge", "core", "erasure", "compliance", "compaction", "reports"]
    on_disk = {p.parent.name for p in (ROOT / "assets").glob("*/__init__.py")}
    assert set(folders) == on_disk
