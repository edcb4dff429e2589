"""The compliance report page: one self-contained HTML file, no script, nothing fetched.

The page is the Jinja2 template templates/compliance_report.html.j2 (pieces in macros.html.j2),
styled by templates/report.css, which is inlined into its <style>: the file stays offline and
self-contained. This module gathers what the template shows and renders it.

Safety: the page holds no JavaScript at all, so nothing taken from the data can run; a strict
Content-Security-Policy (default-src 'none') forbids every request, including images other than
data: URIs. The environment autoescapes every value, after `finalize` has removed e-mail-shaped
text from it (`e()` is the same treatment, for tests); keys are shown shortened. The only markup
passed in is the page's own CSS and the inline SVG charts (charts.py escapes every text in them).
"""

from __future__ import annotations

import functools
from collections import defaultdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup, escape

from assets.landing.freshness import MIN_HISTORY_DAYS, TRAILING_DAYS
from assets.reports.charts import Series, line_chart, stacked_bar_chart
from assets.reports.csvsafe import redact
from assets.reports.status import ALL_CLEAR, DATA_QUALITY_FAILED, INCOMPLETE, NO_DATA, VIOLATIONS_FOUND
from assets.reports.summary import ReportData
from pipelines.clock import PRAGUE, end_of_day
from pipelines.safe_text import file_label

TEMPLATES = Path(__file__).resolve().parent / "templates"
TEMPLATE = "compliance_report.html.j2"
CSS_FILE = "report.css"
EVIDENCE_ROWS = 50
REGISTER_ROWS = 500
GREEN, AMBER, RED, BLUE, GREY = "#2e7d32", "#f0a30a", "#d32f2f", "#1f5fa8", "#8a8f98"
RULE_COLOURS = ("#7f0000", "#d32f2f", "#f57c00", "#fbc02d", "#1f5fa8", "#6a1b9a", "#00838f", "#5d4037")
EXTRA_COLOURS = ("#455a64", "#ad1457", "#558b2f", "#283593")

MEMBERSHIP_RULE = (
    "A CLUB member is an account that is not deleted and holds marketing consent. Each grant of "
    "marketing consent opens a membership interval; a withdrawal of consent or a confirmed account "
    "deletion closes it. Withdrawing marketing consent therefore ends IQOS CLUB membership."
)
CONSENT_RULE = (
    "Consent at any instant is the value of the account's latest consent event at or before that "
    "instant; no consent event yet means no consent, and a deletion ends consent. A grant while "
    "already consented, or a withdrawal while not consented, changes nothing. Consent events are "
    "“Marketing Consent Granted”, “Marketing Consent Withdrawn” and “Segment Consent Preference "
    "Updated” (a category key matching “marketing” set to true grants; false or missing withdraws)."
)
WHY_OPEN = (
    "This rule is stated here on purpose: regulators (the ICO consent checklist; EDPB Guidelines "
    "05/2020, §3.1.2 and §3.1.4) warn against penalising a withdrawal of consent, so the link "
    "between consent and membership must stay visible to compliance officers."
)

STATUS_TEXT = {
    NO_DATA: ("No data", "bad"),
    DATA_QUALITY_FAILED: ("Data quality failed", "dq"),
    VIOLATIONS_FOUND: ("Violations found", "bad"),
    INCOMPLETE: ("Incomplete input", "amber"),
    ALL_CLEAR: ("All clear", "ok"),
}
NAV = (
    ("figures", "Key figures"),
    ("input", "Input"),
    ("trends", "Trends"),
    ("erasure", "Erasure register"),
    ("violations", "Violations"),
    ("consent", "Consent & CLUB"),
    ("quality", "Data quality"),
    ("provenance", "Provenance"),
)


# ---------------------------------------------------------------------------------------------
# Formatting: every value from the data is redacted, then autoescaped
# ---------------------------------------------------------------------------------------------


def _finalize(value: Any) -> Any:
    """Every {{ value }} of the template: markup built by the template or charts.py as it is,
    anything else as redacted text (None as nothing), which autoescaping then escapes."""
    return value if isinstance(value, Markup) else redact(value)


def e(value: Any) -> str:
    """A value from the data as the page writes it: e-mail-shaped text removed, then HTML-escaped."""
    return str(escape(redact(value)))


def n(value: Any) -> str:
    return f"{int(value or 0):,}"


def when(value: Any) -> Any:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return value.astimezone(PRAGUE).strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, date):
        return value.isoformat()
    return value


def days_cell(days_left: int, status: str) -> tuple[str, str]:
    """The days-left cell's class and text: >= 10 days green, < 10 amber, < 5 red, past the due date overdue."""
    if status == "verified":
        return "days-done", "done"
    if status == "overdue" or days_left < 0:
        return "days-overdue", f"overdue {max(0, -int(days_left))} d"
    return ("days-green" if days_left >= 10 else "days-amber" if days_left >= 5 else "days-red"), f"{int(days_left)} d"


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        n=n,
        when=when,
        file_label=file_label,
        days_cell_of=days_cell,
        DATA_QUALITY_FAILED=DATA_QUALITY_FAILED,
        VIOLATIONS_FOUND=VIOLATIONS_FOUND,
        NO_DATA=NO_DATA,
        TRAILING_DAYS=TRAILING_DAYS,
        MIN_HISTORY_DAYS=MIN_HISTORY_DAYS,
        INCOMPLETE=INCOMPLETE,
        EVIDENCE_ROWS=EVIDENCE_ROWS,
        REGISTER_ROWS=REGISTER_ROWS,
        MEMBERSHIP_RULE=MEMBERSHIP_RULE,
        CONSENT_RULE=CONSENT_RULE,
        WHY_OPEN=WHY_OPEN,
    )
    return env


@functools.cache
def css() -> Markup:
    """The page's own style sheet, inlined into its <style> (the page fetches nothing)."""
    text = (TEMPLATES / CSS_FILE).read_text(encoding="utf-8")
    if "</" in text:
        raise ValueError(f"{CSS_FILE} must not hold '</': it would end the page's <style> element")
    return Markup(text)


# ---------------------------------------------------------------------------------------------
# What the page shows, beyond ReportData itself
# ---------------------------------------------------------------------------------------------


def _charts(data: ReportData) -> dict[str, Markup]:
    """The three trend charts: inline SVG built by charts.py, which escapes every text it holds."""
    days = [d for d, _ in data.trend]
    rows = [s for _, s in data.trend]
    members = Series("CLUB members", [r["club"]["members"] for r in rows], BLUE)
    accounts = Series("active accounts", [r["accounts"]["active"] for r in rows], GREY, dashed=True)
    rule_ids = [r.id for r in data.rules] + sorted(
        {k for r in rows for k in r["violations"]} - {r.id for r in data.rules}
    )
    palette = RULE_COLOURS + EXTRA_COLOURS
    violation_series = [
        Series(rule, [r["violations"].get(rule, {}).get("new", 0) for r in rows], palette[i % len(palette)])
        for i, rule in enumerate(rule_ids)
    ]
    erasure_series = [
        Series(status, [r["erasure"][status] for r in rows], colour)
        for status, colour in (("verified", GREEN), ("pending", AMBER), ("overdue", RED))
    ]
    return {
        "club": Markup(
            line_chart("chart-club", "CLUB members and active accounts per run", days, [members, accounts], "accounts")
        ),
        "violations": Markup(
            stacked_bar_chart(
                "chart-violations", "New violations per run, by rule", days, violation_series, "new violations"
            )
        ),
        "erasures": Markup(
            stacked_bar_chart(
                "chart-erasures", "Erased subjects per run, by status", days, erasure_series, "erased subjects"
            )
        ),
    }


def _rules(data: ReportData) -> list[dict[str, Any]]:
    """Every rule of the registry in its order, then rules seen in the data but not registered;
    each with its counts and its evidence rows (most recent first)."""
    counts = data.summary["violations"]
    by_rule: dict[str, list[tuple]] = defaultdict(list)
    for row in data.violations:
        by_rule[row[0]].append(row)
    known = {r.id for r in data.rules}
    registered = [(r.id, r.severity, r.description) for r in data.rules]
    unregistered = [(r, "unregistered", "Not in the rule registry.") for r in sorted(counts) if r not in known]
    return [
        {
            "id": rule_id,
            "severity": severity,
            "description": description,
            "new": counts.get(rule_id, {}).get("new", 0),
            "total": counts.get(rule_id, {}).get("total", 0),
            "rows": by_rule.get(rule_id, []),
        }
        for rule_id, severity, description in registered + unregistered
    ]


def _suites(data: ReportData) -> list[dict[str, Any]]:
    """Great Expectations results, one group per (asset, check) suite."""
    suites: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in data.expectations:
        suites[(row[0], row[1])].append(row)
    return [
        {"asset": asset, "check": check, "rows": rows, "failed": sum(1 for row in rows if not row[6])}
        for (asset, check), rows in suites.items()
    ]


def render(data: ReportData) -> str:
    """The whole page: the same bytes for the same data (it says which day's data, not when it was made)."""
    s = data.summary
    q = s["quality"]
    verdict, status_class = STATUS_TEXT[data.status]
    left = ", ".join(f"{n(count)} {redact(reason)}" for reason, count in data.club_left_by_reason)
    template = environment().get_template(TEMPLATE)
    return template.render(
        css=css(),
        nav=NAV,
        data=data,
        s=s,
        day=data.day.isoformat(),
        verdict=verdict,
        status_class=status_class,
        failed_names=", ".join(f"{check} ({asset})" for asset, check in data.failed_checks),
        new=sum(v["new"] for v in s["violations"].values()),
        total=sum(v["total"] for v in s["violations"].values()),
        first_run=(data.trend[0][0] if data.trend else data.day).isoformat(),
        charts=_charts(data),
        rules=_rules(data),
        left_by_reason=left or "none",  # each reason redacted alone, as the page showed it
        failed_checks=sum(1 for row in data.checks if not row[3]),
        warnings=sum(1 for row in data.checks if not row[3] and row[2] == "WARN"),
        stale=[a for a in data.export_ages if a.stale],
        suites=_suites(data),
        file_bytes=sum(r[1] or 0 for r in data.files),
        day_holds=q["received"] == q["accepted"] + q["duplicates"] + q["rejected"],
        as_of=end_of_day(data.day).isoformat(timespec="seconds"),
    )
