"""Tests of the synthetic inbox generator (the generator/ package).

The checks here are independent of the generator's internals: the inbox is
read back the way CONTRACT.md section 2 describes it (days in order, files in
name order, lines in order), every line is validated by a small validator
written here, and a pure-Python oracle of the POLICY.md rules is compared
with the plan's ground truth.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import hashlib
import io
import json
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pytest

import generator as gen

TZ = ZoneInfo("Europe/Prague")
CZ = holidays.country_holidays("CZ", years=range(2025, 2029))
EVENTS = {
    "Account Created": ("email",),
    "Email Changed": ("email",),
    "Password Reset Requested": (),
    "Password Reset Email Sent": (),
    "Password Changed": (),
    "Signed In": (),
    "Address Changed": ("postal_code", "country"),
    "Marketing Consent Granted": ("notice_version",),
    "Marketing Consent Withdrawn": (),
    "Segment Consent Preference Updated": (),
    "Account Deletion Requested": (),
    "Account Deleted": (),
    "Marketing Message Sent": ("campaign_id",),
}
CHANNELS = {"web", "app", "care_center", "system"}
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
EVENT_RULES = {
    "email_change_not_via_care_center",
    "care_action_outside_hours",
    "password_changed_without_reset",
    "marketing_without_consent",
    "activity_after_deletion",
}

START = date(2026, 10, 20)  # covers the DST end (Oct 25) and CZ holidays Oct 28, Nov 17
DAYS = 30


# --------------------------------------------------------------------------
# helpers


def local_end(d: date) -> datetime:
    """Local midnight that closes d, as an aware instant (DST-safe)."""
    n = d + timedelta(days=1)
    return datetime(n.year, n.month, n.day, tzinfo=TZ)


def in_care_hours(t: datetime) -> bool:
    lt = t.astimezone(TZ)
    special = lt.weekday() >= 5 or lt.date() in CZ
    open_h, close_h = (10, 18) if special else (8, 20)
    sec = lt.hour * 3600 + lt.minute * 60 + lt.second + lt.microsecond / 1e6
    return open_h * 3600 <= sec < close_h * 3600


def parse_ts(s):
    if not isinstance(s, str):
        raise ValueError(s)
    return datetime.fromisoformat(s[:-1] + "+00:00" if s.endswith("Z") else s)


def validate(line: str, arrival: date):
    """Return (reason, obj): reason None when the line is acceptable."""
    try:
        obj = json.loads(line)
    except ValueError:
        return "invalid_json", None
    if not isinstance(obj, dict):
        return "not_an_object", None
    for f in ("messageId", "userId", "timestamp", "event", "type"):
        if f not in obj:
            return f"missing_field:{f}", None
    ctx = obj.get("context")
    if not isinstance(ctx, dict) or "channel" not in ctx:
        return "missing_field:context.channel", None
    mid = obj["messageId"]
    if not isinstance(mid, str) or len(mid) > 100:
        return "invalid_message_id", None
    if obj["type"] != "track":
        return "invalid_type", None
    if obj["event"] not in EVENTS:
        return "unknown_event", None
    if ctx["channel"] not in CHANNELS:
        return "unknown_channel", None
    try:
        ts = parse_ts(obj["timestamp"])
    except ValueError:
        return "invalid_timestamp", None
    if ts.tzinfo is None:
        return "timestamp_without_offset", None
    if ts > local_end(arrival) + timedelta(hours=1):
        return "timestamp_too_late", None
    if not isinstance(obj["userId"], str) or not obj["userId"]:
        return "invalid_user_id", None
    props = obj.get("properties", {})
    if not isinstance(props, dict):
        return "invalid_properties", None
    for p in EVENTS[obj["event"]]:
        if p not in props:
            return f"missing_property:{p}", None
    if "medium" in props and props["medium"] not in ("email", "sms", "push"):
        return "invalid_property:medium", None
    if obj["event"] == "Segment Consent Preference Updated":
        prefs = ctx.get("consent", {}).get("categoryPreferences")
        if not isinstance(prefs, dict):
            return "invalid_property:context.consent.categoryPreferences", None
    for p in ("email", "previous_email"):
        if p in props and not (isinstance(props[p], str) and EMAIL_RE.match(props[p])):
            return f"invalid_email:properties.{p}", None
    return None, obj


def read_lines(path: Path):
    """Lines of a file as the contract reads them; None if unreadable."""
    data = path.read_bytes()
    if path.name.endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError):
            return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.startswith("\ufeff"):
        text = text[1:]
    return [ln for ln in text.splitlines() if ln.strip()]


class Inbox:
    """An inbox read back in pipeline order, with per-file tallies."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.plan = json.loads((root / "_plan" / "plan.json").read_text())
        self.tally: dict[str, dict[str, dict]] = {}
        self.reasons: dict[str, Counter] = {}
        self.events: list[dict] = []  # accepted events
        self.accepted_raw: dict[str, str] = {}
        self.rejected_raw: list[str] = []
        seen: set[str] = set()
        for day_dir in sorted((root / "events").iterdir()):
            arrival = date.fromisoformat(day_dir.name)
            self.tally[day_dir.name] = {}
            self.reasons[day_dir.name] = Counter()
            for f in sorted(day_dir.iterdir()):
                st = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
                self.tally[day_dir.name][f.name] = st
                lines = read_lines(f)
                if lines is None:
                    st["received"] = st["rejected"] = 1
                    self.reasons[day_dir.name]["unreadable_file"] += 1
                    continue
                for line in lines:
                    st["received"] += 1
                    reason, obj = validate(line, arrival)
                    if reason:
                        st["rejected"] += 1
                        self.reasons[day_dir.name][reason] += 1
                        self.rejected_raw.append(line)
                        continue
                    if obj["messageId"] in seen:
                        st["duplicates"] += 1
                        assert line == self.accepted_raw[obj["messageId"]], "duplicates are exact copies"
                        continue
                    seen.add(obj["messageId"])
                    st["accepted"] += 1
                    self.accepted_raw[obj["messageId"]] = line
                    self.events.append(
                        {
                            "mid": obj["messageId"],
                            "event": obj["event"],
                            "uid": obj["userId"],
                            "t": parse_ts(obj["timestamp"]),
                            "ts": obj["timestamp"],
                            "channel": obj["context"]["channel"],
                            "ctx": obj["context"],
                            "props": obj.get("properties") or {},
                            "arrival": arrival,
                        }
                    )
        self.by_account: dict[str, list[dict]] = defaultdict(list)
        for e in sorted(self.events, key=lambda e: e["t"]):
            self.by_account[e["uid"]].append(e)
        self.deleted_at = {}
        self.deleted_arrival = {}
        for uid, evs in self.by_account.items():
            for e in evs:
                if e["event"] == "Account Deleted":
                    self.deleted_at[uid] = e["t"]
                    self.deleted_arrival[uid] = e["arrival"]
                    break

    # consent value at an instant (latest consent event <= t; deletion ends it)
    def consent_at(self, uid: str, t: datetime) -> bool:
        if uid in self.deleted_at and self.deleted_at[uid] <= t:
            return False
        value = False
        for e in self.by_account.get(uid, ()):
            if e["t"] > t:
                break
            if e["event"] == "Marketing Consent Granted":
                value = True
            elif e["event"] == "Marketing Consent Withdrawn":
                value = False
            elif e["event"] == "Segment Consent Preference Updated":
                prefs = e["ctx"].get("consent", {}).get("categoryPreferences", {})
                value = any(k.lower() == "marketing" and v is True for k, v in prefs.items())
        return value

    def event_violations(self) -> set[tuple]:
        out = set()
        for uid, evs in self.by_account.items():
            mails = []
            deleted = self.deleted_at.get(uid)
            for e in evs:
                t, ev = e["t"], e["event"]
                if ev == "Email Changed" and e["channel"] != "care_center":
                    out.add(("email_change_not_via_care_center", e["mid"], uid, e["arrival"].isoformat()))
                if e["channel"] == "care_center" and not in_care_hours(t):
                    out.add(("care_action_outside_hours", e["mid"], uid, e["arrival"].isoformat()))
                if ev == "Password Changed" and not any(t - timedelta(hours=24) <= m <= t for m in mails):
                    out.add(("password_changed_without_reset", e["mid"], uid, e["arrival"].isoformat()))
                if ev == "Marketing Message Sent" and not self.consent_at(uid, t):
                    out.add(("marketing_without_consent", e["mid"], uid, e["arrival"].isoformat()))
                if deleted is not None and t > deleted and ev != "Marketing Message Sent":
                    out.add(("activity_after_deletion", e["mid"], uid, e["arrival"].isoformat()))
                if ev == "Password Reset Email Sent":
                    mails.append(t)
        return out

    def exports(self, system: str):
        for f in sorted((self.root / "snapshots" / system).glob("*.csv")):
            with open(f, newline="", encoding="utf-8") as fh:
                yield date.fromisoformat(f.stem), list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def inbox(tmp_path_factory) -> Inbox:
    out = tmp_path_factory.mktemp("inbox")
    gen.generate(
        out,
        600,
        DAYS,
        START,
        11,
        bad_line_rate=0.02,
        violation_rate=0.02,
        duplicate_rate=0.02,
        late_rate=0.05,
        corrupt_files=2,
        lines_per_file=120,
    )
    return Inbox(out)


# --------------------------------------------------------------------------
# tests


def _tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_determinism(tmp_path):
    kw = dict(bad_line_rate=0.02, violation_rate=0.02, duplicate_rate=0.02, corrupt_files=1, lines_per_file=200)
    a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    gen.generate(a, 150, 8, START, 5, **kw)
    gen.generate(b, 150, 8, START, 5, **kw)
    gen.generate(c, 150, 8, START, 6, **kw)
    da, db, dc = _tree_digest(a), _tree_digest(b), _tree_digest(c)
    assert da == db
    assert da != dc
    assert any(k.endswith(".gz") for k in da)
    # regenerating into a generated inbox replaces it, byte for byte
    gen.generate(a, 150, 8, START, 5, **kw)
    assert _tree_digest(a) == db


def test_workers_and_chunking_do_not_change_output(tmp_path, monkeypatch):
    monkeypatch.setattr("generator.chunk.CHUNK_ACCOUNTS", 40)
    kw = dict(bad_line_rate=0.02, violation_rate=0.02, duplicate_rate=0.02, lines_per_file=150)
    gen.generate(tmp_path / "one", 130, 6, START, 3, workers=1, **kw)
    gen.generate(tmp_path / "two", 130, 6, START, 3, workers=2, **kw)
    assert _tree_digest(tmp_path / "one") == _tree_digest(tmp_path / "two")


def test_refuses_foreign_directory(tmp_path):
    (tmp_path / "events" / "2026-01-01").mkdir(parents=True)
    (tmp_path / "events" / "2026-01-01" / "x.jsonl").write_text("{}\n")
    with pytest.raises(FileExistsError):
        gen.generate(tmp_path, 5, 2, START, 1)


def test_layout(inbox):
    root = inbox.root
    days = sorted(p.name for p in (root / "events").iterdir())
    assert days == [(START + timedelta(i)).isoformat() for i in range(DAYS)]
    names = [f.name for d in (root / "events").iterdir() for f in d.iterdir()]
    assert all(re.fullmatch(r"part-\d{4}\.jsonl(\.gz)?", n) for n in names)
    assert any(n.endswith(".gz") for n in names) and any(n.endswith(".jsonl") for n in names)
    multi = [d for d in (root / "events").iterdir() if len(list(d.glob("part-0*"))) > 1]
    assert multi, "small lines_per_file must rotate files"
    for system, header in (
        ("crm", ["account_id", "email", "first_name", "last_name", "city"]),
        ("marketing_list", ["email", "account_id"]),
        ("club_roster", ["account_id", "email", "joined_on"]),
    ):
        files = sorted((root / "snapshots" / system).glob("*.csv"))
        assert [f.stem for f in files] == days
        with open(files[0], newline="", encoding="utf-8") as fh:
            assert next(csv.reader(fh)) == header


def test_plan_counts_reconcile(inbox):
    plan_days = inbox.plan["days"]
    assert sorted(plan_days) == sorted(inbox.tally)
    totals = Counter()
    for day, files in inbox.tally.items():
        p = plan_days[day]
        assert p["files"] == files, day
        for k in ("received", "accepted", "duplicates", "rejected"):
            assert p[k] == sum(f[k] for f in files.values())
            totals[k] += p[k]
        assert p["received"] == p["accepted"] + p["duplicates"] + p["rejected"]
        for st in files.values():
            assert st["received"] == st["accepted"] + st["duplicates"] + st["rejected"]
        assert p["rejected_by_reason"] == dict(inbox.reasons[day]), day
        assert sum(p["rejected_by_reason"].values()) == p["rejected"]
    assert inbox.plan["totals"] == dict(totals)
    reasons = Counter()
    for c in inbox.reasons.values():
        reasons.update(c)
    expected = {r for r in gen.REJECT_REASONS if r != "missing_property"} | {"unreadable_file"}
    assert expected <= set(reasons), expected - set(reasons)
    assert any(r.startswith("missing_property:") for r in reasons)
    assert totals["duplicates"] > 0


def test_duplicates_placed_in_all_ways(inbox):
    """Same file, another file of the same day and a later day."""
    where: dict[str, tuple] = {}
    kinds = set()
    for day_dir in sorted((inbox.root / "events").iterdir()):
        for f in sorted(day_dir.iterdir()):
            for line in read_lines(f) or []:
                reason, obj = validate(line, date.fromisoformat(day_dir.name))
                if reason:
                    continue
                mid = obj["messageId"]
                if mid in where:
                    d0, f0 = where[mid]
                    kinds.add(
                        "same_file"
                        if (d0, f0) == (day_dir.name, f.name)
                        else "same_day"
                        if d0 == day_dir.name
                        else "later_day"
                    )
                else:
                    where[mid] = (day_dir.name, f.name)
    assert kinds == {"same_file", "same_day", "later_day"}


def test_accepted_lines_are_contract_valid(inbox):
    assert len(inbox.events) == sum(d["accepted"] for d in inbox.plan["days"].values())
    offsets = Counter()
    for e in inbox.events:
        assert e["uid"].startswith("acc_")
        assert e["t"] <= local_end(e["arrival"]), "accepted events never rely on the 1 h slack"
        assert e["t"] >= datetime(START.year, START.month, START.day, tzinfo=TZ)
        lt = e["t"].astimezone(TZ)
        if e["ts"].endswith("Z"):
            offsets["Z"] += 1
        else:
            off = e["ts"][-6:]
            offsets[off] += 1
            assert off == ("+01:00" if lt.utcoffset() == timedelta(hours=1) else "+02:00"), e["ts"]
        assert (e["channel"] == "care_center") == ("agentId" in e["ctx"])
        if e["event"] in ("Account Created", "Email Changed"):
            assert EMAIL_RE.match(e["props"]["email"])
        if e["event"] == "Marketing Message Sent" and "medium" in e["props"]:
            assert e["props"]["medium"] in ("email", "sms", "push")
        # folder = local day of occurrence, or the next day for late arrivals
        assert e["arrival"] >= lt.date()
    assert offsets["Z"] and offsets["+01:00"] and offsets["+02:00"]


def test_late_arrivals_have_no_rule_impact(inbox):
    late = [e for e in inbox.events if e["arrival"] > e["t"].astimezone(TZ).date()]
    assert late
    late_after = set(inbox.plan["late_events_after_deletion"])
    for e in late:
        assert e["event"] in ("Signed In", "Address Changed"), e
        if e["mid"] not in late_after:
            assert e["arrival"] == e["t"].astimezone(TZ).date() + timedelta(days=1)


def test_late_events_after_deletion(inbox):
    expected = set()
    for uid, evs in inbox.by_account.items():
        if uid not in inbox.deleted_at:
            continue
        for e in evs:
            if e["t"] < inbox.deleted_at[uid] and e["arrival"] > inbox.deleted_arrival[uid]:
                expected.add(e["mid"])
    assert expected
    assert set(inbox.plan["late_events_after_deletion"]) == expected


def test_event_violations_match_oracle(inbox):
    oracle = inbox.event_violations()
    planned = {
        (v["rule"], v["message_id"], v["account_id"], v["detected_on"])
        for v in inbox.plan["violations"]
        if v["rule"] in EVENT_RULES
    }
    assert {v[0] for v in planned} == EVENT_RULES
    assert oracle == planned
    # each planted event breaks exactly one rule
    assert len({v[1] for v in planned}) == len(planned)
    for v in inbox.plan["violations"]:
        if v["rule"] in EVENT_RULES:
            assert v["system"] is None and v["message_id"]


def test_out_of_hours_cases_cover_weekday_and_special_days(inbox):
    planted = {v["message_id"] for v in inbox.plan["violations"] if v["rule"] == "care_action_outside_hours"}
    kinds = set()
    for e in inbox.events:
        if e["channel"] != "care_center":
            continue
        if e["mid"] not in planted:
            assert in_care_hours(e["t"]), e
            continue
        assert e["event"] != "Email Changed"
        lt = e["t"].astimezone(TZ)
        special = lt.weekday() >= 5 or lt.date() in CZ
        kinds.add(("special" if special else "weekday", lt.hour))
    assert ("special", 9) in kinds, kinds  # weekend/holiday 09:xx
    assert ("weekday", 20) in kinds, kinds  # weekday 20:xx
    # care-center e-mail changes happen, always inside hours
    assert any(e["event"] == "Email Changed" and e["channel"] == "care_center" for e in inbox.events)


def test_account_lifecycle_is_sane(inbox):
    created = {}
    emails_owner: dict[str, str] = {}
    rereg = {(r["old_account_id"], r["new_account_id"]) for r in inbox.plan["reregistrations"]}
    assert rereg
    for uid, evs in inbox.by_account.items():
        assert evs[0]["event"] == "Account Created", uid
        created[uid] = evs[0]["t"]
        assert sum(e["event"] == "Account Created" for e in evs) == 1
        for e in evs:
            if e["event"] in ("Account Created", "Email Changed"):
                em = e["props"]["email"]
                if em in emails_owner and emails_owner[em] != uid:
                    assert (emails_owner[em], uid) in rereg
                    assert inbox.deleted_at[emails_owner[em]] < created[uid]
                emails_owner[em] = uid
    # deletion flows: request minutes before the deletion
    for uid, t_del in inbox.deleted_at.items():
        req = [e["t"] for e in inbox.by_account[uid] if e["event"] == "Account Deletion Requested"]
        assert req and max(r for r in req if r < t_del) > t_del - timedelta(hours=5)
    # some deleted accounts changed e-mail before the deletion
    assert any(
        any(e["event"] == "Email Changed" and e["t"] < inbox.deleted_at[uid] for e in inbox.by_account[uid])
        for uid in inbox.deleted_at
    )


def test_deletions_plan(inbox):
    plan = {d["account_id"]: d for d in inbox.plan["deletions"]}
    assert set(plan) == set(inbox.deleted_at)
    for uid, d in plan.items():
        t = inbox.deleted_at[uid]
        assert parse_ts(d["deleted_at"]) == t
        local = t.astimezone(TZ).date()
        assert d["deleted_on"] == local.isoformat()
        assert d["due_date"] == gen.due_date_for(local).isoformat()
    assert gen.due_date_for(date(2026, 1, 31)) == date(2026, 2, 28)
    assert gen.due_date_for(date(2028, 1, 31)) == date(2028, 2, 29)
    assert gen.due_date_for(date(2026, 12, 15)) == date(2027, 1, 15)
    assert gen.due_date_for(date(2026, 3, 31)) == date(2026, 4, 30)


def _account_emails(inbox: Inbox) -> dict[str, set[str]]:
    out = defaultdict(set)
    for uid, evs in inbox.by_account.items():
        for e in evs:
            if e["event"] in ("Account Created", "Email Changed"):
                out[uid].add(e["props"]["email"].strip().lower())
    return out


def test_exports_match_state_and_plan(inbox):
    emails = _account_emails(inbox)
    created = {uid: evs[0]["t"] for uid, evs in inbox.by_account.items()}
    first_seen = {}
    lingering = Counter()
    for system in ("crm", "marketing_list", "club_roster"):
        for day, rows in inbox.exports(system):
            end = local_end(day)
            erased = {u for u, t in inbox.deleted_at.items() if t <= end}
            ids = set()
            for row in rows:
                uid = row["account_id"]
                if not uid:
                    assert row["email"], "never a fully empty row"
                    continue
                ids.add(uid)
                assert created[uid] <= end
                if row["email"]:
                    assert row["email"].strip().lower() in emails[uid]
                if uid in erased:
                    lingering[system] += 1
                    continue
                if system != "crm" and not inbox.consent_at(uid, end):
                    rule = (
                        "marketing_list_without_consent"
                        if system == "marketing_list"
                        else "club_member_without_consent"
                    )
                    first_seen.setdefault((rule, uid, system), day.isoformat())
            if system == "crm":
                # every non-erased account created by the end of the day
                active = {u for u, t in created.items() if t <= end and u not in erased}
                assert active <= ids | {r["account_id"] for r in rows}
            else:
                # every consenting non-erased account is listed (by id or by e-mail)
                listed_mail = {r["email"].strip().lower() for r in rows if r["email"]}
                for u, t in created.items():
                    if t <= end and u not in erased and inbox.consent_at(u, end):
                        assert u in ids or emails[u] & listed_mail, (system, day, u)
    assert all(lingering[s] for s in ("crm", "marketing_list", "club_roster"))
    planned = {
        (v["rule"], v["account_id"], v["system"]): v["detected_on"]
        for v in inbox.plan["violations"]
        if v["rule"] not in EVENT_RULES
    }
    assert {k[0] for k in planned} == {"marketing_list_without_consent", "club_member_without_consent"}
    assert planned == first_seen
    for v in inbox.plan["violations"]:
        if v["rule"] not in EVENT_RULES:
            assert v["message_id"] is None


def test_downstream_clean_on(inbox):
    emails = _account_emails(inbox)
    owner_active = defaultdict(set)
    for uid, ems in emails.items():
        for em in ems:
            owner_active[em].add(uid)
    created = {uid: evs[0]["t"] for uid, evs in inbox.by_account.items()}
    exports = {s: list(inbox.exports(s)) for s in ("crm", "marketing_list", "club_roster")}
    found_prev_email = False
    for d in inbox.plan["deletions"]:
        uid = d["account_id"]
        deleted_on = date.fromisoformat(d["deleted_on"])
        for system, files in exports.items():
            clean = None
            for day, rows in files:
                if day < deleted_on:
                    continue
                end = local_end(day)
                # an e-mail is residual only while no non-erased account holds it
                held = {
                    em
                    for em in emails[uid]
                    if any(
                        o != uid and created[o] <= end and (o not in inbox.deleted_at or inbox.deleted_at[o] > end)
                        for o in owner_active[em]
                    )
                }
                mine = emails[uid] - held
                residual = [
                    r for r in rows if r["account_id"] == uid or (r["email"] and r["email"].strip().lower() in mine)
                ]
                for r in residual:
                    cur = [e for e in inbox.by_account[uid] if e["event"] in ("Account Created", "Email Changed")]
                    if r["email"] and r["email"].strip().lower() != cur[-1]["props"]["email"]:
                        found_prev_email = True
                if not residual and clean is None:
                    clean = day.isoformat()
                if residual:
                    clean = None
            assert d["downstream_clean_on"][system] == clean, (uid, system)
    assert found_prev_email, "some lingering CRM rows carry a previous e-mail"


def test_hostile_values_present(inbox):
    raw = "\n".join(inbox.accepted_raw.values())
    events = inbox.events
    assert any(e["props"].get("first_name") == gen.HOSTILE_FIRST_NAME for e in events)
    assert any(e["props"].get("campaign_id") == gen.HOSTILE_CAMPAIGN for e in events)
    assert any(e["props"].get("source") == gen.HOSTILE_SOURCE for e in events)
    assert "Šťastn" in raw or "Řehoř" in raw or "Dvořák" in raw  # UTF-8, not escaped
    crm = (inbox.root / "snapshots" / "crm" / f"{(START + timedelta(DAYS - 1)).isoformat()}.csv").read_text()
    rows = list(csv.DictReader(io.StringIO(crm)))
    assert any(r["first_name"] == gen.HOSTILE_FIRST_NAME for r in rows)


def test_emails_are_high_entropy_and_unique(inbox):
    created = [e["props"]["email"] for e in inbox.events if e["event"] == "Account Created"]
    rereg_new = {r["new_account_id"] for r in inbox.plan["reregistrations"]}
    fresh = [e["props"]["email"] for e in inbox.events if e["event"] == "Account Created" and e["uid"] not in rereg_new]
    assert len(set(fresh)) == len(fresh)
    for em in created:
        local = em.split("@")[0]
        assert re.fullmatch(r"[a-z]+\.[a-z]+\.[0-9a-z]{8}", local), em


def test_plan_holds_no_personal_data(inbox):
    text = (inbox.root / "_plan" / "plan.json").read_text()
    assert "@" not in text
    for e in inbox.events[:200]:
        for v in e["props"].values():
            if isinstance(v, str) and len(v) > 3 and v not in ("CZ",):
                assert (
                    json.dumps(v)[1:-1] not in text
                    or v.startswith("cmp-")
                    or v
                    in (
                        "registration",
                        "preferences",
                        "checkout",
                        "app_onboarding",
                        "unsubscribe_link",
                        "app_settings",
                        "care_center",
                        "email",
                        "sms",
                        "push",
                    )
                    or re.fullmatch(r"\d{4}-\d{2}", v)
                )


def test_cli(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    gen.add_arguments(parser)
    args = parser.parse_args(
        [
            "--out",
            str(tmp_path / "x"),
            "--accounts",
            "60",
            "--days",
            "4",
            "--start",
            "2026-03-27",
            "--seed",
            "2",
            "--bad-line-rate",
            "0.01",
            "--gzip-every",
            "2",
            "--export-every",
            "2",
            "--corrupt-files",
            "1",
            "--quiet",
        ]
    )
    assert gen.main_from_args(args) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "@" not in out and "lines" in out
    snaps = sorted(p.name for p in (tmp_path / "x" / "snapshots" / "crm").iterdir())
    assert snaps == ["2026-03-27.csv", "2026-03-29.csv"]  # every 2nd day; DST starts Mar 29
    assert (tmp_path / "x" / "events" / "2026-03-28" / "part-0000.jsonl.gz").exists()
    assert (tmp_path / "x" / "events" / "2026-03-30" / "part-9999.jsonl.gz").exists()
    bad = parser.parse_args(
        [
            "--out",
            str(tmp_path / "x"),
            "--accounts",
            "1",
            "--days",
            "0",
            "--start",
            "2026-03-27",
            "--seed",
            "1",
            "--quiet",
        ]
    )
    assert gen.main_from_args(bad) == 2
