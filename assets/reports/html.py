"""The compliance report page: one self-contained HTML file, no script, nothing fetched.

Safety: the page holds no JavaScript at all, so nothing taken from the data can run; a strict
Content-Security-Policy (default-src 'none') forbids every request, including images other than
data: URIs; every value from the data goes through `e()` (e-mail-shaped text removed, then
html.escape with quote=True); keys are shown shortened. Styles are inline, charts are inline SVG.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime
from html import escape
from typing import Any

from assets.reports.charts import Series, line_chart, stacked_bar_chart
from assets.reports.csvsafe import redact
from assets.reports.summary import (
    ALL_CLEAR,
    DATA_QUALITY_FAILED,
    VIOLATIONS_FOUND,
    ReportData,
)
from pipelines.clock import PRAGUE
from pipelines.safe_text import file_label

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; form-action 'none'"
NONE_MARK = '<span class="muted">(none)</span>'
NONE_TEXT = '<span class="muted">none</span>'
EVIDENCE_ROWS = 50
REGISTER_ROWS = 500
GREEN, AMBER, RED, DARK_RED, BLUE, GREY = "#2e7d32", "#f0a30a", "#d32f2f", "#7f0000", "#1f5fa8", "#8a8f98"
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
    ALL_CLEAR: ("All clear", "ok"),
    VIOLATIONS_FOUND: ("Violations found", "bad"),
    DATA_QUALITY_FAILED: ("Data quality failed", "dq"),
}

CSS = """
:root { --ink:#1d2430; --muted:#5b6472; --line:#d9dde3; --bg:#f6f7f9; --green:#2e7d32; --amber:#b26a00;
        --red:#c62828; --darkred:#7f0000; --blue:#1f5fa8; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:var(--bg); }
main { max-width:1180px; margin:0 auto; padding:0 20px 40px; }
header.status { padding:22px 28px; color:#fff; }
header.status h1 { margin:0 0 6px; font-size:24px; font-weight:600; }
header.status .verdict { display:inline-block; font-size:20px; font-weight:700; padding:4px 14px; border-radius:6px;
       background:rgba(255,255,255,.18); margin:4px 0 8px; }
header.status p { margin:4px 0; max-width:980px; }
header.ok { background:#2e7d32; } header.bad { background:#b3261e; } header.dq { background:#5c2a86; }
nav { background:#fff; border-bottom:1px solid var(--line); padding:8px 28px; position:sticky; top:0; }
nav a { color:var(--blue); margin-right:18px; text-decoration:none; font-weight:500; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:18px 22px; margin:18px 0;
          overflow-x:auto; }
h2 { margin:0 0 12px; font-size:19px; } h3 { margin:18px 0 6px; font-size:16px; }
.tiles { display:grid; grid-template-columns:repeat(auto-fill, minmax(136px, 1fr)); gap:10px; }
.tile { border:1px solid var(--line); border-radius:8px; padding:10px 14px; background:#fbfcfd; }
.tile .label { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.tile .value { font-size:24px; font-weight:650; white-space:nowrap; } .tile .value small { font-size:17px; }
.tile .sub { color:var(--muted); font-size:12.5px; }
.tile.alert { border-color:var(--red); background:#fff4f3; } .tile.alert .value { color:var(--red); }
.tile.caution { border-color:#e0a030; background:#fffaf0; }
.charts { display:flex; flex-wrap:wrap; gap:18px; }
figure { margin:0; } figcaption { font-weight:600; margin-bottom:4px; }
svg.chart { background:#fff; max-width:100%; height:auto; }
svg.chart .grid { stroke:#eceff3; } svg.chart .axis { stroke:#8a8f98; }
svg.chart text { font:11px system-ui, sans-serif; fill:#3c4450; }
svg.chart .axis-label { font-size:12px; fill:#5b6472; } svg.chart .value { font-weight:600; }
svg.chart .line { fill:none; stroke-width:2.2; }
table { border-collapse:collapse; width:100%; margin:6px 0 10px; font-size:13px; }
th, td { border-bottom:1px solid var(--line); padding:5px 8px; text-align:left; vertical-align:top; }
th { background:#f0f2f5; font-weight:600; } td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; }
td code { overflow-wrap:break-word; } td code.mid { overflow-wrap:anywhere; }
tr.group th { background:#e8ecf2; }
code, .key { font-family:ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size:12.5px; }
.pill { display:inline-block; padding:1px 8px; border-radius:10px; font-size:12px; font-weight:600; color:#fff; }
.sev-critical { background:#7f0000; } .sev-high { background:#c62828; } .sev-medium { background:#b26a00; }
.sev-low { background:#5b6472; } .sev-unregistered { background:#455a64; }
.pass { background:#2e7d32; } .fail { background:#c62828; } .warn { background:#b26a00; }
.new { background:#1f5fa8; }
td.days-green { background:#e3f4e4; color:#1b5e20; font-weight:600; }
td.days-amber { background:#fff1d6; color:#8a5200; font-weight:600; }
td.days-red { background:#fde0de; color:#b3261e; font-weight:700; }
td.days-overdue { background:#7f0000; color:#fff; font-weight:700; }
td.days-done { color:var(--muted); }
.callout { border-left:5px solid var(--blue); background:#eef4fb; padding:10px 14px; margin:8px 0 14px; }
.callout p { margin:4px 0; }
.muted { color:var(--muted); } .small { font-size:12.5px; }
tr.failed td { background:#fff4f3; }
.legend span { display:inline-block; margin-right:14px; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px; vertical-align:-1px; margin-right:4px; }
footer { color:var(--muted); font-size:12.5px; text-align:center; padding:10px; }
@media print { nav { position:static; } section { break-inside:avoid; } }
"""


# ---------------------------------------------------------------------------------------------
# Formatting: every value from the data goes through e()
# ---------------------------------------------------------------------------------------------


def e(value: Any) -> str:
    """A value from the data, safe in HTML text and attributes (e-mail-shaped text removed)."""
    return escape(redact(value), quote=True)


def n(value: Any) -> str:
    return f"{int(value or 0):,}"


def when(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return e(value.astimezone(PRAGUE).strftime("%Y-%m-%d %H:%M:%S"))
    if isinstance(value, date):
        return e(value.isoformat())
    return e(value)


def short(key: Any) -> str:
    """A shortened key: enough to find the row in the CSV, never an identity."""
    if not key:
        return "—"
    text = str(key)
    return f'<span class="key" title="{e(text[:12])}…">{e(text[:12])}…</span>'


def pill(text: str, cls: str) -> str:
    return f'<span class="pill {e(cls)}">{e(text)}</span>'


def table(headers: list[tuple[str, str]], rows: list[str], empty: str) -> str:
    """headers: (label, css class); rows: ready <tr> strings."""
    if not rows:
        return f'<p class="muted">{e(empty)}</p>'
    head = "".join(f'<th class="{cls}">{e(label)}</th>' if cls else f"<th>{e(label)}</th>" for label, cls in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def tile(label: str, value: str, sub: str = "", alert: bool = False, caution: bool = False) -> str:
    cls = "tile alert" if alert else "tile caution" if caution else "tile"
    return (
        f'<div class="{cls}"><div class="label">{e(label)}</div><div class="value">{value}</div>'
        f'<div class="sub">{sub}</div></div>'
    )


def days_cell(days_left: int, status: str) -> str:
    """Colour by time left: >= 10 days green, < 10 amber, < 5 red, past the due date overdue."""
    if status == "verified":
        return '<td class="num days-done">done</td>'
    if status == "overdue" or days_left < 0:
        late = max(0, -int(days_left))
        return f'<td class="num days-overdue">overdue {late} d</td>'
    cls = "days-green" if days_left >= 10 else "days-amber" if days_left >= 5 else "days-red"
    return f'<td class="num {cls}">{int(days_left)} d</td>'


# ---------------------------------------------------------------------------------------------
# Sections
# ---------------------------------------------------------------------------------------------


def _header(data: ReportData) -> str:
    s = data.summary
    title, cls = STATUS_TEXT[data.status]
    new = sum(v["new"] for v in s["violations"].values())
    if data.status == DATA_QUALITY_FAILED:
        names = ", ".join(f"{check} ({asset})" for asset, check in data.failed_checks)
        detail = (
            f"Blocking data-quality checks failed: {e(names)}. The figures below may be wrong; the "
            "nightly run is marked failed. See the data-quality section."
        )
    elif data.status == VIOLATIONS_FOUND:
        detail = (
            f"{n(new)} new violation(s) detected today; {n(s['erasure']['overdue'])} erasure(s) overdue. "
            "Every blocking data-quality check passed."
        )
    else:
        detail = "No new violations, no overdue erasures, and every blocking data-quality check passed."
    return (
        f'<header class="status {cls}"><h1>Consent &amp; account compliance report · {e(data.day.isoformat())}</h1>'
        f'<div class="verdict" id="verdict" data-status="{e(data.status)}">{e(title)}</div>'
        f"<p>{detail}</p>"
        f'<p class="small">State as of the end of {e(data.day.isoformat())} (Europe/Prague); events that '
        f"arrived up to that day.</p></header>"
    )


def _nav() -> str:
    links = [
        ("figures", "Key figures"),
        ("trends", "Trends"),
        ("erasure", "Erasure register"),
        ("violations", "Violations"),
        ("consent", "Consent & CLUB"),
        ("quality", "Data quality"),
        ("provenance", "Provenance"),
    ]
    return "<nav>" + "".join(f'<a href="#{a}">{e(t)}</a>' for a, t in links) + "</nav>"


def _figures(data: ReportData) -> str:
    s = data.summary
    q, c, er = s["quality"], s["club"], s["erasure"]
    new = sum(v["new"] for v in s["violations"].values())
    total = sum(v["total"] for v in s["violations"].values())
    tiles = [
        tile("Active accounts", n(s["accounts"]["active"]), "non-erased, created by the end of the day"),
        tile("CLUB members", n(c["members"]), f"+{n(c['joined'])} joined · −{n(c['left'])} left today"),
        tile(
            "Consent today",
            f"{n(s['consent']['granted'])}<small> / {n(s['consent']['withdrawn'])}</small>",
            "granted / withdrawn",
        ),
        tile("New violations", n(new), f"{n(total)} detected to date", alert=new > 0),
        tile(
            "Erasures",
            n(er["erased_total"]),
            f"{n(er['verified'])} verified · {n(er['pending'])} pending · {n(er['overdue'])} overdue",
            alert=er["overdue"] > 0,
        ),
        tile(
            "Events received",
            n(q["received"]),
            f"{n(q['accepted'])} accepted · {n(q['duplicates'])} duplicates · {n(q['rejected'])} rejected",
        ),
        tile(
            "Data quality",
            n(q["expectations_evaluated"]),
            f"expectations evaluated · {n(q['expectations_failed'])} failed",
            alert=data.status == DATA_QUALITY_FAILED,
            caution=data.status != DATA_QUALITY_FAILED and q["expectations_failed"] > 0,
        ),
    ]
    return f'<section id="figures"><h2>Key figures</h2><div class="tiles">{"".join(tiles)}</div></section>'


def _rule_colours(rule_ids: list[str]) -> dict[str, str]:
    palette = RULE_COLOURS + EXTRA_COLOURS
    return {r: palette[i % len(palette)] for i, r in enumerate(rule_ids)}


def _trends(data: ReportData) -> str:
    days = [d for d, _ in data.trend]
    rows = [s for _, s in data.trend]
    members = Series("CLUB members", [r["club"]["members"] for r in rows], BLUE)
    accounts = Series("active accounts", [r["accounts"]["active"] for r in rows], GREY, dashed=True)
    club = line_chart("chart-club", "CLUB members and active accounts per run", days, [members, accounts], "accounts")
    rule_ids = [r.id for r in data.rules] + sorted(
        {k for r in rows for k in r["violations"]} - {r.id for r in data.rules}
    )
    colours = _rule_colours(rule_ids)
    violation_series = [
        Series(rule, [r["violations"].get(rule, {}).get("new", 0) for r in rows], colours[rule]) for rule in rule_ids
    ]
    violations = stacked_bar_chart(
        "chart-violations", "New violations per run, by rule", days, violation_series, "new violations"
    )
    erasure_series = [
        Series(status, [r["erasure"][status] for r in rows], colour)
        for status, colour in (("verified", GREEN), ("pending", AMBER), ("overdue", RED))
    ]
    erasures = stacked_bar_chart(
        "chart-erasures", "Erased subjects per run, by status", days, erasure_series, "erased subjects"
    )
    first = days[0].isoformat() if days else data.day.isoformat()
    return (
        f'<section id="trends"><h2>Trends</h2><p class="muted">Every published run from {e(first)} to '
        f"{e(data.day.isoformat())} ({len(days)} run(s)).</p>"
        f'<div class="charts"><figure><figcaption>CLUB members</figcaption>{club}</figure>'
        f"<figure><figcaption>Violations by rule (new per run)</figcaption>{violations}</figure>"
        f"<figure><figcaption>Erasures by status</figcaption>{erasures}</figure></div></section>"
    )


def _erasure(data: ReportData) -> str:
    s = data.summary["erasure"]
    rows = []
    for key, deleted_at, due, days_left, status, residual, verified_on, _erased_on in data.register[:REGISTER_ROWS]:
        status_pill = pill(status, "pass" if status == "verified" else "fail" if status == "overdue" else "warn")
        rows.append(
            f"<tr><td>{short(key)}</td><td>{when(deleted_at)}</td><td>{when(due)}</td>"
            f"{days_cell(days_left, status)}<td>{status_pill}</td>"
            f"<td>{e(residual) if residual else NONE_TEXT}</td>"
            f"<td>{when(verified_on)}</td></tr>"
        )
    more = (
        f'<p class="muted small">Showing the first {REGISTER_ROWS:,} of {len(data.register):,} subjects '
        "(overdue and pending first); the full register is in erasure_register.csv.</p>"
        if len(data.register) > REGISTER_ROWS
        else ""
    )
    legend = (
        '<p class="legend small"><span><span class="swatch" style="background:#e3f4e4"></span>10 days or more left'
        '</span><span><span class="swatch" style="background:#fff1d6"></span>fewer than 10</span>'
        '<span><span class="swatch" style="background:#fde0de"></span>fewer than 5</span>'
        '<span><span class="swatch" style="background:#7f0000"></span>overdue</span></p>'
    )
    return (
        '<section id="erasure"><h2>Erasure register</h2>'
        f"<p>{n(s['erased_total'])} erased subject(s): {n(s['verified'])} verified, {n(s['pending'])} pending, "
        f"{n(s['overdue'])} overdue. The clock (GDPR Art. 12(3)) starts at the confirmed deletion; the due date "
        "is one calendar month later. Residual locations are the places where the subject's identifiers "
        "were still found: <code>warehouse</code>, <code>inbox</code> or a downstream system's latest export.</p>"
        + legend
        + table(
            [
                ("Subject (key)", ""),
                ("Deleted at", ""),
                ("Due date", ""),
                ("Days left", "num"),
                ("Status", ""),
                ("Residual locations", ""),
                ("Verified on", ""),
            ],
            rows,
            "No erased subjects.",
        )
        + more
        + "</section>"
    )


def _violations(data: ReportData) -> str:
    s = data.summary["violations"]
    by_rule: dict[str, list[tuple]] = defaultdict(list)
    for row in data.violations:
        by_rule[row[0]].append(row)
    known = {r.id: r for r in data.rules}
    ordered = list(data.rules) + [r for r in sorted(s) if r not in known]
    overview, details = [], []
    for item in ordered:
        rule_id = item if isinstance(item, str) else item.id
        severity = "unregistered" if isinstance(item, str) else item.severity
        description = "Not in the rule registry." if isinstance(item, str) else item.description
        counts = s.get(rule_id, {"total": 0, "new": 0})
        overview.append(
            f'<tr><td><a href="#rule-{e(rule_id)}"><code>{e(rule_id)}</code></a></td>'
            f"<td>{pill(severity, 'sev-' + severity)}</td><td>{e(description)}</td>"
            f'<td class="num">{n(counts["new"])}</td><td class="num">{n(counts["total"])}</td></tr>'
        )
        evidence = []
        rows = by_rule.get(rule_id, [])
        for _rule, _sev, key, occurred_at, detected_on, message_id, system, detail in rows[:EVIDENCE_ROWS]:
            badge = " " + pill("new", "new") if detected_on == data.day else ""
            evidence.append(
                f"<tr><td>{when(detected_on)}{badge}</td><td>{when(occurred_at)}</td>"
                f'<td><code class="mid">{e(message_id) if message_id else "—"}</code></td>'
                f"<td>{e(system) if system else '—'}</td>"
                f"<td>{short(key)}</td><td>{e(detail) if detail else ''}</td></tr>"
            )
        more = (
            f'<p class="muted small">Showing the {EVIDENCE_ROWS} most recent of {len(rows):,}; '
            "every row is in violations.csv.</p>"
            if len(rows) > EVIDENCE_ROWS
            else ""
        )
        details.append(
            f'<div class="rule" id="rule-{e(rule_id)}"><h3><code>{e(rule_id)}</code> '
            f"{pill(severity, 'sev-' + severity)}</h3><p>{e(description)}</p>"
            f'<p class="small muted">{n(counts["new"])} new today · {n(counts["total"])} detected to date</p>'
            + table(
                [
                    ("Detected on", ""),
                    ("Occurred at", ""),
                    ("Message id", ""),
                    ("System", ""),
                    ("Subject (key)", ""),
                    ("Details", ""),
                ],
                evidence,
                "No violations of this rule.",
            )
            + more
            + "</div>"
        )
    return (
        '<section id="violations"><h2>Violations by rule</h2>'
        "<p>Every rule of the policy, with its plain-language description and severity. Evidence: the event's "
        "message id (event rules) or the system whose export showed it (export rules), and when it occurred.</p>"
        + table(
            [("Rule", ""), ("Severity", ""), ("What it means", ""), ("New", "num"), ("To date", "num")],
            overview,
            "",
        )
        + "".join(details)
        + "</section>"
    )


def _consent(data: ReportData) -> str:
    s = data.summary
    c = s["club"]
    by_reason = ", ".join(f"{n(count)} {e(reason)}" for reason, count in data.club_left_by_reason) or "none"
    rows = [
        f"<tr><td>{e(change)}</td><td>{e(source) if source else NONE_MARK}</td>"
        f"<td>{e(version) if version else NONE_MARK}</td>"
        f'<td class="num">{n(events)}</td></tr>'
        for change, source, version, events in data.consent_by_source
    ]
    return (
        '<section id="consent"><h2>Consent and IQOS CLUB</h2>'
        '<div class="callout" id="derivation-rule"><p><strong>How CLUB membership is derived.</strong> '
        f'{e(MEMBERSHIP_RULE)}</p><p>{e(CONSENT_RULE)}</p><p class="small">{e(WHY_OPEN)}</p></div>'
        f'<div class="tiles">'
        + tile("Members at end of day", n(c["members"]))
        + tile("Joined today", n(c["joined"]), "intervals opened")
        + tile("Left today", n(c["left"]), f"by reason: {by_reason}")
        + tile("Consent granted", n(s["consent"]["granted"]), "consent events today")
        + tile("Consent withdrawn", n(s["consent"]["withdrawn"]), "consent events today")
        + "</div><h3>Today's consent events by source and notice version</h3>"
        + table(
            [("Change", ""), ("Source", ""), ("Notice version", ""), ("Events", "num")],
            rows,
            "No consent events occurred today.",
        )
        + "</section>"
    )


def _quality(data: ReportData) -> str:
    q = data.summary["quality"]
    check_rows = []
    for asset, check, severity, passed, evaluated, failed, description in data.checks:
        result = pill("pass", "pass") if passed else pill("fail", "fail" if severity == "ERROR" else "warn")
        check_rows.append(
            f'<tr class="{"" if passed else "failed"}"><td>{result}</td><td>{e(severity)}</td>'
            f"<td><code>{e(asset)}</code></td><td><code>{e(check)}</code></td>"
            f'<td class="num">{n(evaluated)}</td><td class="num">{n(failed)}</td><td>{e(description)}</td></tr>'
        )
    expectation_rows = []
    suites: dict[tuple[str, str], list[tuple]] = defaultdict(list)
    for row in data.expectations:
        suites[(row[0], row[1])].append(row)
    for (asset, check), rows in suites.items():
        failed = sum(1 for row in rows if not row[6])
        expectation_rows.append(
            f'<tr class="group"><th colspan="5"><code>{e(check)}</code> on <code>{e(asset)}</code> · '
            f"{len(rows)} expectation(s), {failed} failed</th></tr>"
        )
        for _a, _c, _pos, statement, expectation, column, success, evaluated, unexpected, error in rows:
            result = pill("pass", "pass") if success else pill("fail", "fail")
            note = f' <span class="muted">({e(error)})</span>' if error else ""
            expectation_rows.append(
                f'<tr class="{"" if success else "failed"}"><td>{result}</td>'
                f'<td>{e(statement)}{note}<div class="small muted">{e(expectation)}</div></td>'
                f'<td><code>{e(column)}</code></td><td class="num">{n(evaluated)}</td>'
                f'<td class="num">{n(unexpected)}</td></tr>'
            )
    reasons = [f'<tr><td><code>{e(r)}</code></td><td class="num">{n(c)}</td></tr>' for r, c in data.rejected_reasons]
    failed_checks = sum(1 for row in data.checks if not row[3])
    return (
        '<section id="quality"><h2>Data quality</h2>'
        f"<p>{len(data.checks)} check(s) ran for this day before the report was written: "
        f"{n(q['expectations_evaluated'])} expectations evaluated, {n(q['expectations_failed'])} failed, "
        f"{failed_checks} check(s) failed. <strong>ERROR</strong> checks are blocking: their failure makes this "
        "report wrong, sets the headline to “data quality failed” and fails the nightly run. "
        "<strong>WARN</strong> checks are shown but do not fail the run.</p>"
        '<p class="small muted">Included: every check of the day that runs before the report, on the landing, '
        "core, compliance and ops assets (ops.check_results). The report's own checks (summary_matches_tables, "
        "reconciliation_holds, all_rule_ids_present, blocking_quality_checks_passed and the file checks) run "
        "after it is written; their results are in Dagster and in ops.check_results.</p>"
        + table(
            [
                ("Result", ""),
                ("Severity", ""),
                ("Asset", ""),
                ("Check", ""),
                ("Evaluated", "num"),
                ("Failed", "num"),
                ("Description", ""),
            ],
            check_rows,
            "No checks ran before the report.",
        )
        + "<h3>Great Expectations: every expectation</h3>"
        + table(
            [("Result", ""), ("Expectation (GX type)", ""), ("Column", ""), ("Rows", "num"), ("Unexpected", "num")],
            expectation_rows,
            "No Great Expectations suite ran before the report.",
        )
        + "<h3>Rejected lines of the day, by reason</h3>"
        + table([("Reason", ""), ("Lines", "num")], reasons, "No rejected lines.")
        + "</section>"
    )


def _provenance(data: ReportData, generated_at: datetime) -> str:
    q = data.summary["quality"]
    file_rows = []
    for name, size, received, accepted, duplicates, rejected, readable in data.files:
        holds = received == accepted + duplicates + rejected
        file_rows.append(
            f'<tr class="{"" if holds else "failed"}"><td><code>{e(file_label(name))}</code></td>'
            f'<td class="num">{n(size)}</td><td class="num">{n(received)}</td><td class="num">{n(accepted)}</td>'
            f'<td class="num">{n(duplicates)}</td><td class="num">{n(rejected)}</td>'
            f"<td>{'yes' if readable else pill('unreadable', 'fail')}</td>"
            f"<td>{pill('holds', 'pass') if holds else pill('broken', 'fail')}</td></tr>"
        )
    day_holds = q["received"] == q["accepted"] + q["duplicates"] + q["rejected"]
    if data.files:
        file_rows.append(
            f'<tr><th>Day total</th><th class="num">{n(sum(r[1] or 0 for r in data.files))}</th>'
            f'<th class="num">{n(q["received"])}</th><th class="num">{n(q["accepted"])}</th>'
            f'<th class="num">{n(q["duplicates"])}</th><th class="num">{n(q["rejected"])}</th><th></th>'
            f"<th>{pill('holds', 'pass') if day_holds else pill('broken', 'fail')}</th></tr>"
        )
    export_rows = [
        f"<tr><td>{e(system)}</td><td>{when(export_date)}</td><td><code>{e(name)}</code></td>"
        f'<td class="num">{n(total)}</td><td class="num">{n(keyed)}</td>'
        f"<td>{'yes' if readable else pill('unreadable', 'fail')} {e(problem) if problem else ''}</td></tr>"
        for system, export_date, name, total, keyed, readable, problem in data.exports
    ]
    stamp = generated_at.astimezone(PRAGUE).isoformat(timespec="seconds")
    return (
        '<section id="provenance"><h2>Provenance</h2><table class="meta"><tbody>'
        f"<tr><th>Run date</th><td>{e(data.day.isoformat())}</td></tr>"
        f'<tr><th>Run id</th><td><code id="run-id">{e(data.run_id)}</code> '
        '<span class="muted small">(derived from the day, the code version and the inputs; the Dagster run '
        "id is recorded in ops.runs)</span></td></tr>"
        f'<tr><th>Code version</th><td><code id="code-version">{e(data.code_version)}</code></td></tr>'
        f'<tr><th>Generated at</th><td><time id="generated-at" datetime="{e(stamp)}">{e(stamp)}</time></td></tr>'
        "</tbody></table>"
        "<h3>Input event files of the day and their reconciliation</h3>"
        '<p class="small">For every file and for the day: received lines = accepted + duplicates + rejected. '
        "A file whose name is not machine-made (it may hold an e-mail address, a name or an address) is "
        "shown by its label, <code>file#…</code>: "
        "<code>python -m pipelines.safe_text &lt;inbox&gt;/events/&lt;day&gt;</code> lists a day's labels "
        "beside the file names.</p>"
        + table(
            [
                ("File", ""),
                ("Bytes", "num"),
                ("Received", "num"),
                ("Accepted", "num"),
                ("Duplicates", "num"),
                ("Rejected", "num"),
                ("Readable", ""),
                ("Reconciliation", ""),
            ],
            file_rows,
            "No event files arrived for this day.",
        )
        + "<h3>Downstream exports used (latest at or before the day)</h3>"
        + table(
            [
                ("System", ""),
                ("Export date", ""),
                ("File", ""),
                ("Rows", "num"),
                ("Keyed rows", "num"),
                ("Readable", ""),
            ],
            export_rows,
            "No exports.",
        )
        + '<h3>Files of this report</h3><p class="small">compliance_report.html, summary.json, violations.csv, '
        "erasure_register.csv; their SHA-256 digests are in MANIFEST.sha256 beside them "
        "(check with <code>sha256sum -c MANIFEST.sha256</code>).</p></section>"
    )


def render(data: ReportData, generated_at: datetime) -> str:
    """The whole page. Deterministic for the same data, apart from `generated_at`."""
    body = (
        _header(data)
        + _nav()
        + "<main>"
        + _figures(data)
        + _trends(data)
        + _erasure(data)
        + _violations(data)
        + _consent(data)
        + _quality(data)
        + _provenance(data, generated_at)
        + "</main>"
        + "<footer>Consent &amp; account compliance pipeline · no raw e-mail or postal address appears in "
        "this report · keys are keyed hashes, shown shortened</footer>"
    )
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Compliance report {e(data.day.isoformat())} · {e(STATUS_TEXT[data.status][0])}</title>"
        f"<style>{CSS}</style></head><body>{body}</body></html>\n"
    )
