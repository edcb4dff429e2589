"""Baseline (b) of the benchmark: a straightforward pandas implementation.

Consent history, CLUB membership and the eight policy rules over the same inbox, written the
way a data analyst would without our pipeline: read every JSON line, build DataFrames, use
groupby / merge_asof. It is deliberately plain, not deliberately slow. It prints one JSON line
with the row counts it produced, so the benchmark can compare them with the pipeline's.

    python bench/pandas_baseline.py --inbox DIR --until YYYY-MM-DD
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import holidays
import pandas as pd

PRAGUE = ZoneInfo("Europe/Prague")
CHANNELS = {"web", "app", "care_center", "system"}


def read_events(inbox: Path, until: date) -> pd.DataFrame:
    rows = []
    for folder in sorted((inbox / "events").iterdir()):
        try:
            arrival = date.fromisoformat(folder.name)
        except ValueError:
            continue
        if arrival > until:
            continue
        for path in sorted(folder.glob("*.jsonl*")):
            opener = gzip.open if path.name.endswith(".gz") else open
            try:
                with opener(path, "rt", encoding="utf-8-sig") as fh:
                    for line in fh:
                        try:
                            e = json.loads(line)
                        except ValueError:
                            continue
                        if not isinstance(e, dict):
                            continue
                        ctx = e.get("context") or {}
                        props = e.get("properties") or {}
                        prefs = (ctx.get("consent") or {}).get("categoryPreferences") or {}
                        rows.append(
                            (
                                e.get("messageId"),
                                e.get("event"),
                                e.get("userId"),
                                e.get("timestamp"),
                                ctx.get("channel"),
                                props.get("email"),
                                any(str(k).lower() == "marketing" and v is True for k, v in prefs.items())
                                if isinstance(prefs, dict)
                                else False,
                                arrival,
                            )
                        )
            except (OSError, EOFError, UnicodeDecodeError):
                continue
    df = pd.DataFrame(
        rows, columns=["message_id", "event", "account_id", "ts", "channel", "email", "segment_marketing", "arrival"]
    )
    df = df[df["message_id"].map(lambda v: isinstance(v, str)) & df["channel"].isin(CHANNELS)]
    df = df[df["ts"].astype(str).str.contains(r"(?:Z|[+-]\d\d(?::?\d\d)?)$", regex=True)]
    df["occurred_at"] = pd.to_datetime(df["ts"], utc=True, errors="coerce", format="ISO8601")
    df = df.dropna(subset=["occurred_at", "account_id", "event"])
    end = datetime.combine(until + timedelta(days=1), datetime.min.time(), tzinfo=PRAGUE)
    df = df[df["occurred_at"] <= pd.Timestamp(end)]
    return df.drop_duplicates("message_id", keep="first").reset_index(drop=True)


def consent_and_membership(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    value = {"Marketing Consent Granted": True, "Marketing Consent Withdrawn": False}
    consent = df[df["event"].isin([*value, "Segment Consent Preference Updated"])].copy()
    consent["granted"] = consent["event"].map(value).fillna(consent["segment_marketing"]).astype(bool)
    deletions = df[df["event"] == "Account Deleted"].groupby("account_id")["occurred_at"].min()
    timeline = pd.concat(
        [
            consent[["account_id", "occurred_at", "granted"]].assign(kind="consent"),
            deletions.rename("occurred_at").reset_index().assign(kind="deleted", granted=False),
        ]
    ).sort_values(["account_id", "occurred_at"], kind="stable")
    timeline["deleted"] = (timeline["kind"] == "deleted").groupby(timeline["account_id"]).cummax()
    timeline["member"] = timeline["granted"] & ~timeline["deleted"]
    prev = timeline.groupby("account_id")["member"].shift(fill_value=False)
    opens = timeline[timeline["member"] & ~prev]
    closes = timeline[~timeline["member"] & prev]
    intervals = opens[["account_id", "occurred_at"]].rename(columns={"occurred_at": "valid_from"})
    intervals["n"] = intervals.groupby("account_id").cumcount()
    ends = closes[["account_id", "occurred_at", "kind"]].rename(columns={"occurred_at": "valid_to"})
    ends["n"] = ends.groupby("account_id").cumcount()
    intervals = intervals.merge(ends, on=["account_id", "n"], how="left")
    intervals = intervals[intervals["valid_to"].isna() | (intervals["valid_to"] > intervals["valid_from"])]
    return consent, intervals


def rules(df: pd.DataFrame, consent: pd.DataFrame, inbox: Path, until: date) -> dict[str, int]:
    out: dict[str, int] = {}
    out["email_change_not_via_care_center"] = int(
        ((df["event"] == "Email Changed") & (df["channel"] != "care_center")).sum()
    )

    care = df[df["channel"] == "care_center"]
    local = care["occurred_at"].dt.tz_convert(PRAGUE)
    years = sorted(set(local.dt.year))
    cz = holidays.country_holidays("CZ", years=years or [until.year])
    free = (local.dt.day_of_week >= 5) | local.dt.date.map(lambda d: d in cz)
    minutes = local.dt.hour * 60 + local.dt.minute
    open_, close = free.map({True: 600, False: 480}), free.map({True: 1080, False: 1200})
    out["care_action_outside_hours"] = int(((minutes < open_) | (minutes >= close)).sum())

    changes = df[df["event"] == "Password Changed"].sort_values("occurred_at")
    resets = df[df["event"] == "Password Reset Email Sent"][["account_id", "occurred_at"]].sort_values("occurred_at")
    resets = resets.rename(columns={"occurred_at": "reset_at"})
    m = pd.merge_asof(changes, resets, left_on="occurred_at", right_on="reset_at", by="account_id")
    out["password_changed_without_reset"] = int(
        (m["reset_at"].isna() | (m["occurred_at"] - m["reset_at"] > pd.Timedelta(hours=24))).sum()
    )

    deleted = df[df["event"] == "Account Deleted"].groupby("account_id")["occurred_at"].min().rename("deleted_at")
    sends = df[df["event"] == "Marketing Message Sent"].sort_values("occurred_at")
    c = (
        consent[["account_id", "occurred_at", "granted"]]
        .sort_values("occurred_at")
        .rename(columns={"occurred_at": "c_at"})
    )
    s = pd.merge_asof(sends, c, left_on="occurred_at", right_on="c_at", by="account_id").join(deleted, on="account_id")
    no_consent = (s["granted"] != True) | (s["deleted_at"].notna() & (s["deleted_at"] <= s["occurred_at"]))  # noqa: E712
    out["marketing_without_consent"] = int(no_consent.sum())

    after = df.join(deleted, on="account_id")
    out["activity_after_deletion"] = int(
        ((after["occurred_at"] > after["deleted_at"]) & (after["event"] != "Marketing Message Sent")).sum()
    )

    # Export rules: latest export of each system at or before `until`, judged at the export's end of day.
    for system, rule in (
        ("club_roster", "club_member_without_consent"),
        ("marketing_list", "marketing_list_without_consent"),
    ):
        files = sorted(p for p in (inbox / "snapshots" / system).glob("*.csv") if date.fromisoformat(p.stem) <= until)
        if not files:
            out[rule] = 0
            continue
        export_day = date.fromisoformat(files[-1].stem)
        rows = pd.read_csv(files[-1], dtype=str).fillna("")
        eod = pd.Timestamp(datetime.combine(export_day + timedelta(days=1), datetime.min.time(), tzinfo=PRAGUE))
        latest = c[c["c_at"] <= eod].groupby("account_id")["granted"].last()
        live = ~rows["account_id"].map(lambda a, eod=eod: a in deleted.index and deleted[a] <= eod)
        held = rows["account_id"].map(latest).fillna(False).astype(bool)
        out[rule] = int((live & (rows["account_id"] != "") & ~held).sum())
    out["erasure_overdue"] = 0  # needs the erasure verifier, which this baseline does not have
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--inbox", type=Path, required=True)
    parser.add_argument("--until", type=date.fromisoformat, required=True)
    args = parser.parse_args()
    started = time.perf_counter()
    df = read_events(args.inbox, args.until)
    consent, intervals = consent_and_membership(df)
    counts = rules(df, consent, args.inbox, args.until)
    print(
        json.dumps(
            {
                "seconds": round(time.perf_counter() - started, 2),
                "events": len(df),
                "consent_rows": len(consent),
                "intervals": len(intervals),
                "open_intervals": int(intervals["valid_to"].isna().sum()),
                "violations": counts,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
