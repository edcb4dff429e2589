"""Deterministic synthetic inbox generator.

Writes a landing zone in the shape of CONTRACT.md section 2:

* ``<out>/events/<YYYY-MM-DD>/part-NNNN.jsonl[.gz]`` - Segment "track" lines,
  the folder date being the arrival day (Europe/Prague calendar day);
* ``<out>/snapshots/<system>/<YYYY-MM-DD>.csv`` - full end-of-day exports of
  ``crm``, ``marketing_list`` and ``club_roster``;
* ``<out>/_plan/plan.json`` - the ground truth (counts, planted violations,
  deletions, re-registrations).  It holds account ids and message ids only,
  never an e-mail address, a name or a postal address.  The pipeline never
  reads it.

Outside the planted defects the activity is contract-valid and rule-clean
(POLICY.md).  Every planted violation breaks exactly one rule.

Same arguments and seed give byte-identical output: accounts are simulated in
fixed-size chunks, each with its own ``random.Random`` seeded from
``(seed, chunk index)``, and chunk results are written strictly in chunk
order whatever the number of worker processes.

Design notes
------------
* Times are integer epoch seconds internally; every account's events are
  strictly increasing in time, at least a few seconds apart, so consent, reset
  and deletion comparisons never tie.  No event is ever placed exactly on a
  local midnight.
* Late arrival (folder = occurrence day + 1) is restricted to ``Signed In``
  and ``Address Changed`` (no rule impact), plus a few events of deleted
  accounts that occurred before the deletion but arrive after its folder
  (``late_events_after_deletion`` in the plan).
* Bad lines and duplicates are *extra* lines next to the accepted ones, so the
  simulated state is exactly the state of the accepted events.
* Exports are built from per-account "segments" (first day, last day
  exclusive, CSV row); a downstream lag keeps erased accounts for a while.
  Export-based planted violations are evaluated against consent at the end of
  the export's own date.
"""

from __future__ import annotations

import argparse
import bisect
import gzip
import json
import os
import random
import shutil
import sys
import time
import unicodedata
from collections import Counter
from collections.abc import Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

__all__ = [
    "generate",
    "add_arguments",
    "main_from_args",
    "REJECT_REASONS",
    "EVENT_RULES",
    "EXPORT_RULES",
    "SYSTEMS",
    "UNREADABLE_FILE_REASON",
]

TZ = ZoneInfo("Europe/Prague")
SYSTEMS = ("crm", "marketing_list", "club_roster")
EXPORT_HEADERS = {
    "crm": "account_id,email,first_name,last_name,city\n",
    "marketing_list": "email,account_id\n",
    "club_roster": "account_id,email,joined_on\n",
}

#: Accounts simulated per chunk.  Part of the output definition: changing it
#: changes the bytes produced for a given seed.
CHUNK_ACCOUNTS = 20_000
DEFAULT_LINES_PER_FILE = 250_000

# Event names (contract section 2.1).
E_CREATED = "Account Created"
E_EMAIL = "Email Changed"
E_RESET_REQ = "Password Reset Requested"
E_RESET_MAIL = "Password Reset Email Sent"
E_PWD = "Password Changed"
E_SIGNIN = "Signed In"
E_ADDRESS = "Address Changed"
E_GRANT = "Marketing Consent Granted"
E_WITHDRAW = "Marketing Consent Withdrawn"
E_SEGMENT = "Segment Consent Preference Updated"
E_DEL_REQ = "Account Deletion Requested"
E_DELETED = "Account Deleted"
E_SEND = "Marketing Message Sent"

REQUIRED_PROPS = {
    E_CREATED: ("email",),
    E_EMAIL: ("email",),
    E_ADDRESS: ("postal_code", "country"),
    E_GRANT: ("notice_version",),
    E_SEND: ("campaign_id",),
}
LATEABLE = frozenset((E_SIGNIN, E_ADDRESS))

EVENT_RULES = (
    "email_change_not_via_care_center",
    "care_action_outside_hours",
    "password_changed_without_reset",
    "marketing_without_consent",
    "activity_after_deletion",
)
EXPORT_RULES = ("marketing_list_without_consent", "club_member_without_consent")

#: Rejection reason codes used for bad lines (kept verbatim in the plan).
#: ``missing_property:`` and ``invalid_email:`` get their suffix per event.
REJECT_REASONS = (
    "invalid_json",
    "not_an_object",
    "missing_field:messageId",
    "missing_field:userId",
    "missing_field:timestamp",
    "missing_field:event",
    "missing_field:type",
    "missing_field:context.channel",
    "invalid_message_id",
    "invalid_type",
    "unknown_event",
    "unknown_channel",
    "invalid_timestamp",
    "timestamp_without_offset",
    "timestamp_too_late",
    "missing_property",
    "invalid_email:properties.email",
)
#: Reason recorded in the plan for a file that cannot be read at all.
UNREADABLE_FILE_REASON = "unreadable_file"

# --------------------------------------------------------------------------
# Reference data (Czech-ish names, places).  Stored already JSON-escaped where
# that matters; plain names contain no characters that need escaping.

FIRST_F = (
    "Jana Marie Eva Hana Anna Lenka Kateřina Lucie Věra Alena Petra Veronika "
    "Jaroslava Tereza Martina Michaela Jitka Helena Ludmila Zdeňka Ivana Monika "
    "Eliška Zuzana Markéta Barbora Kristýna Klára Adéla Natálie Šárka Dagmar "
    "Simona Karolína Pavla Denisa Blanka Radka Vendula Romana"
).split()
FIRST_M = (
    "Jiří Jan Petr Josef Pavel Martin Tomáš Jaroslav Miroslav Zdeněk Václav "
    "Michal František Jakub Milan Karel Lukáš David Vladimír Ondřej Ladislav "
    "Roman Stanislav Marek Radek Daniel Antonín Vojtěch Filip Adam Matěj Štěpán "
    "Dominik Aleš Řehoř Bohumil Libor Radim Vít Kryštof"
).split()
LAST_NAMES = tuple(
    tuple(p.split("/"))
    for p in (
        "Novák/Nováková Svoboda/Svobodová Novotný/Novotná Dvořák/Dvořáková "
        "Černý/Černá Procházka/Procházková Kučera/Kučerová Veselý/Veselá "
        "Horák/Horáková Němec/Němcová Marek/Marková Pospíšil/Pospíšilová "
        "Pokorný/Pokorná Hájek/Hájková Král/Králová Jelínek/Jelínková "
        "Růžička/Růžičková Beneš/Benešová Fiala/Fialová Sedláček/Sedláčková "
        "Doležal/Doležalová Zeman/Zemanová Kolář/Kolářová Navrátil/Navrátilová "
        "Čermák/Čermáková Vaněk/Vaňková Urban/Urbanová Blažek/Blažková "
        "Kříž/Křížová Kovář/Kovářová Bartoš/Bartošová Vlček/Vlčková "
        "Polák/Poláková Musil/Musilová Kopecký/Kopecká Šimek/Šimková "
        "Konečný/Konečná Malý/Malá Holub/Holubová Štěpánek/Štěpánková "
        "Šťastný/Šťastná Kadlec/Kadlecová Matoušek/Matoušková Říha/Říhová"
    ).split()
)
CITIES = (
    ("Praha", ("110", "120", "130", "140", "150", "160", "170", "180", "190")),
    ("Brno", ("602", "612", "615", "621", "625", "635")),
    ("Ostrava", ("702", "703", "708", "709")),
    ("Plzeň", ("301", "312", "323", "326")),
    ("Liberec", ("460",)),
    ("Olomouc", ("779",)),
    ("České Budějovice", ("370",)),
    ("Hradec Králové", ("500",)),
    ("Ústí nad Labem", ("400",)),
    ("Pardubice", ("530",)),
    ("Zlín", ("760",)),
    ("Havířov", ("736",)),
    ("Kladno", ("272",)),
    ("Jihlava", ("586",)),
    ("Opava", ("746",)),
    ("Frýdek-Místek", ("738",)),
    ("Teplice", ("415",)),
    ("Děčín", ("405",)),
    ("Karlovy Vary", ("360",)),
    ("Třebíč", ("674",)),
)
STREETS = (
    "Vinohradská Národní Masarykova Husova Nádražní Palackého Komenského "
    "Sokolská Lidická Jiráskova Smetanova Tyršova Havlíčkova Žižkova Školní "
    "Zahradní Polní Krátká Dlouhá Lipová Jungmannova Revoluční Pražská"
).split() + ["Na Příkopě", "U Lesa", "K Nádraží", "Pod Hájem", "Nad Stráněmi"]
DOMAINS = ("example.cz",) * 6 + ("example.com",) * 3 + ("example.net",)
NOTICE_VERSIONS = ("2025-09", "2026-01", "2026-06")
GRANT_SOURCES = ("registration", "preferences", "checkout", "app_onboarding")
WITHDRAW_SOURCES = ("preferences", "unsubscribe_link", "app_settings")
MEDIA = ("email", "email", "email", "sms", "push")
CAMPAIGN_SUFFIX = "abcdef"

# Hostile-but-valid values, planted a handful of times, deterministically.
HOSTILE_FIRST_NAME = "<script>alert(1)</script>"
HOSTILE_LAST_NAME = 'O\'Brien "Nováková", Jr.'
HOSTILE_CITY = "=cmd|' /C calc'!A0"
HOSTILE_CAMPAIGN = '=HYPERLINK("http://x","y")'
HOSTILE_SOURCE = "<img src=x onerror=alert(1)>"
HOSTILE_FIRST_POS = (1, 37)  # positions in chunk 0
HOSTILE_LAST_POS = (11,)
HOSTILE_CITY_POS = (23,)
FORCED_DELETION_POS = (2, 5, 9, 14, 21)

UNKNOWN_EVENTS = ("Order Completed", "Product Viewed", "Cart Updated", "Newsletter Opened")
UNKNOWN_CHANNELS = ("kiosk", "pos", "phone", "email")
BAD_TYPES = ("identify", "page", "screen")

CTX_WEB = '{"channel":"web"}'
CTX_APP = '{"channel":"app"}'
CTX_SYS = '{"channel":"system"}'
CTX_CARE = tuple(f'{{"channel":"care_center","agentId":"agent-{i}"}}' for i in range(1, 41))
SEG_GRANT = (
    '"consent":{"categoryPreferences":{"Marketing":true,"Analytics":false}}',
    '"consent":{"categoryPreferences":{"Analytics":true,"Marketing":true,"Advertising":false}}',
    '"consent":{"categoryPreferences":{"marketing":true,"Functional":true}}',
)
SEG_WITHDRAW = (
    '"consent":{"categoryPreferences":{"Marketing":false,"Analytics":true}}',
    '"consent":{"categoryPreferences":{"Analytics":true,"Functional":true}}',
    '"consent":{"categoryPreferences":{"marketing":false}}',
)

_M64 = (1 << 64) - 1
_M40 = (1 << 40) - 1
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"
_INF = 10**9
_HMS: list[str] = []


def _hms() -> list[str]:
    if not _HMS:
        _HMS.extend(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))
    return _HMS


def _ascii(s: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower() if c.isalnum()
    )


FIRST_F_ASCII = [_ascii(x) for x in FIRST_F]
FIRST_M_ASCII = [_ascii(x) for x in FIRST_M]
LAST_ASCII = [(_ascii(m), _ascii(f)) for m, f in LAST_NAMES]


def _js(s: str) -> str:
    """JSON string literal (with quotes), UTF-8 kept."""
    return json.dumps(s, ensure_ascii=False)


def _csv(s: str) -> str:
    if any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def _splitmix(x: int) -> int:
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def _mix40(x: int) -> int:
    """A bijection on 40-bit integers."""
    x &= _M40
    x ^= x >> 19
    x = (x * 0x9E3779B97F4A7C15) & _M40
    x ^= x >> 17
    x = (x * 0xBF58476D1CE4E5B9) & _M40
    x ^= x >> 21
    return x


def _b36(x: int, width: int) -> str:
    out = []
    for _ in range(width):
        x, r = divmod(x, 36)
        out.append(_B36[r])
    return "".join(out)


def due_date_for(d: date) -> date:
    """Local date of the deletion + 1 calendar month, clamped to month end."""
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    nxt_first = date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1)
    last_day = (nxt_first - timedelta(days=1)).day
    return date(y, m, min(d.day, last_day))


# --------------------------------------------------------------------------
# Calendar


class _Calendar:
    """Local-day geometry of the period, Europe/Prague, DST and CZ holidays."""

    EXTRA = 6  # days beyond the period for too-late timestamps

    def __init__(self, start: date, days: int) -> None:
        import holidays

        self.start = start
        self.n = days
        total = days + self.EXTRA
        self.dates = [(start + timedelta(i)).isoformat() for i in range(total + 1)]

        def epoch(d: date, hour: int = 0) -> int:
            return int(datetime(d.year, d.month, d.day, hour, tzinfo=TZ).timestamp())

        def off(t: int) -> int:
            return int(datetime.fromtimestamp(t, TZ).utcoffset().total_seconds())

        ds = [epoch(start + timedelta(i)) for i in range(total + 1)]
        self.day_start = ds
        self.day_start_set = frozenset(ds)
        self.t0 = ds[0]
        self.t_end = ds[days]
        self.off_a: list[int] = []
        self.off_b: list[int] = []
        self.trans: list[int] = []
        for i in range(total):
            a, b = off(ds[i]), off(ds[i + 1] - 1)
            tr = ds[i + 1]
            if a != b:
                for h in range(1, 26):
                    if off(ds[i] + h * 3600) == b:
                        tr = ds[i] + h * 3600
                        break
            self.off_a.append(a)
            self.off_b.append(b)
            self.trans.append(tr)
        years = range(start.year, (start + timedelta(total)).year + 1)
        cz = holidays.country_holidays("CZ", years=years)
        self.special: list[bool] = []
        self.open: list[int] = []
        self.close: list[int] = []
        for i in range(total):
            d = start + timedelta(i)
            sp = d.weekday() >= 5 or d in cz
            self.special.append(sp)
            oh, ch = (10, 18) if sp else (8, 20)
            self.open.append(epoch(d, oh))
            self.close.append(epoch(d, ch))
        self.utc_base = ds[0] // 86400 - 2
        last = ds[-1] // 86400 + 4
        self.utc_dates = [
            date.fromordinal(date(1970, 1, 1).toordinal() + k).isoformat() for k in range(self.utc_base, last)
        ]
        self.hms = _hms()

    def day_of(self, t: int) -> int:
        return bisect.bisect_right(self.day_start, t) - 1

    def ts_utc(self, t: int, ms: int = -1) -> str:
        s = f"{self.utc_dates[t // 86400 - self.utc_base]}T{self.hms[t % 86400]}"
        return s + (f".{ms:03d}Z" if ms >= 0 else "Z")

    def ts_local(self, t: int, d: int, ms: int = -1, with_offset: bool = True) -> str:
        off = self.off_b[d] if t >= self.trans[d] else self.off_a[d]
        s = f"{self.dates[d]}T{self.hms[(t + off) % 86400]}"
        if ms >= 0:
            s += f".{ms:03d}"
        if with_offset:
            s += "+01:00" if off == 3600 else "+02:00"
        return s

    def in_hours(self, t: int, d: int) -> bool:
        return self.open[d] <= t < self.close[d]


_CAL_CACHE: dict[tuple[date, int], _Calendar] = {}


def _calendar(start: date, days: int) -> _Calendar:
    key = (start, days)
    cal = _CAL_CACHE.get(key)
    if cal is None:
        _CAL_CACHE.clear()
        cal = _CAL_CACHE[key] = _Calendar(start, days)
    return cal


# --------------------------------------------------------------------------
# Chunk simulation


class _ChunkSim:
    """Simulates accounts ``lo..hi-1`` (1-based numbers) of one chunk."""

    def __init__(self, cfg: dict, index: int, lo: int, hi: int) -> None:
        self.cfg = cfg
        self.cal = cal = _calendar(date.fromisoformat(cfg["start"]), cfg["days"])
        self.index = index
        self.lo, self.hi = lo, hi
        seed = cfg["seed"]
        self.rng = random.Random(f"synthetic-inbox/{seed}/{index}")
        self.mid_salt = _splitmix(seed * 0x9E3779B97F4A7C15 + 0x1234567)
        self.mail_salt = _splitmix(seed + 0xABCDEF) & _M40
        n = cal.n
        self.n = n
        self.limit = cal.t_end - 1
        self.buf: list[list] = [[] for _ in range(n)]  # (t, line, tag)
        self.tail: list[list] = [[] for _ in range(n)]  # (line, tag)
        self.eod: list[tuple[int, str]] = []
        self.segs: dict[str, list] = {s: [] for s in SYSTEMS}
        self.violations: list[dict] = []
        self.deletions: list[dict] = []
        self.reregs: list[dict] = []
        self.late_after_del: list[str] = []
        self.pending_rereg: list[tuple] = []
        self.vr = cfg["violation_rate"]
        self.blr = cfg["bad_line_rate"]
        self.dr = cfg["duplicate_rate"]
        self.lr = cfg["late_rate"]
        self.epa = cfg["events_per_account"]
        self.export_days = cfg["export_days"]
        first = index == 0
        self.force: set[str] = set()  # chunk 0: make sure every case occurs
        self.force_ev: list[str] = []  # chunk 0: event rules still to plant
        if first:
            self.force |= {"rereg", "email_then_delete"}
            if self.lr > 0:
                self.force.add("late_after_deletion")
            if self.vr > 0:
                self.force_ev = [
                    "care_ooh_special",
                    "care_ooh_weekday",
                    "email_change_not_via_care_center",
                    "marketing_without_consent",
                    "password_changed_without_reset",
                ]
                self.force |= {
                    "marketing_without_consent_deleted",
                    "activity_after_deletion",
                    "marketing_list_without_consent",
                    "club_member_without_consent",
                }
        self.hostile_sends = 2 if first else 0
        self.hostile_sources = 2 if first else 0
        self.bad_cycle = 0 if (first and self.blr > 0) else len(REJECT_REASONS)
        self.dup_cycle = 0 if (first and self.dr > 0) else 3
        self.blank_lines = 0

    # ---------------------------------------------------------------- ids
    def _mid(self, seq: int) -> str:
        return f"m-{_splitmix(((self.a << 14) | seq) + self.mid_salt):016x}"

    def _email(self, k: int) -> str:
        tok = _b36(_mix40(self.a * 8 + k + self.mail_salt), 8)
        dom = DOMAINS[int(self.rng.random() * len(DOMAINS))]
        return f"{self.first_ascii}.{self.last_ascii}.{tok}@{dom}"

    # ---------------------------------------------------------------- emit
    def emit(self, t: int, ev: str, props: str, ctx: str, kind: int = 0, late: int = 0) -> str:
        """Append one accepted event; ``props`` is ``,"properties":{..}`` or ''."""
        cal = self.cal
        d = bisect.bisect_right(cal.day_start, t) - 1
        if t in cal.day_start_set:
            t += 1
        if t > self.limit or t <= self.last:  # pragma: no cover - an internal invariant
            raise AssertionError(f"event time out of order or past the period ({self.uid})")
        self.last = t
        self.last_d = d
        self.seq += 1
        mid = self._mid(self.seq)
        r = self.rng.random
        u = r()
        if ctx is CTX_SYS:
            ts = cal.ts_utc(t)
        elif u < 0.5:
            ts = cal.ts_local(t, d, int(r() * 1000) if u < 0.08 else -1)
        else:
            ts = cal.ts_utc(t, int(r() * 1000) if u > 0.92 else -1)
        self.last_ts = ts
        arr = d + late
        if kind == 0 and ev in LATEABLE and d < self.n - 1 and r() < self.lr:
            arr = d + 1
        if r() < 0.3:
            rt = t + 1 + int(r() * 20) if arr == d else cal.day_start[arr] + 30 + int(r() * 5400)
            extra = f',"sentAt":"{ts}","receivedAt":"{cal.ts_utc(rt, int(r() * 1000))}"'
        else:
            extra = ""
        line = (
            f'{{"messageId":"{mid}","type":"track","event":"{ev}","userId":"{self.uid}",'
            f'"timestamp":"{ts}"{props},"context":{ctx}{extra}}}'
        )
        self.evs.append((t, d, arr, line, ev, mid, kind))
        return mid

    def nxt(self, t: int) -> int:
        lo = self.last + 60 + int(self.rng.random() * 540)
        return t if t > lo else lo

    def chan(self) -> str:
        return CTX_WEB if self.rng.random() < 0.55 else CTX_APP

    def care_ctx(self) -> str:
        return CTX_CARE[int(self.rng.random() * len(CTX_CARE))]

    def care_slot(self, t: int) -> int | None:
        """First suitable time >= t inside Customer Care hours, or None."""
        cal, r = self.cal, self.rng.random
        d = cal.day_of(t)
        for _ in range(3):
            if d >= self.n:
                return None
            o, c = cal.open[d], cal.close[d]
            if t < o:
                t = o if r() < 0.1 else o + int(r() * min(4 * 3600, c - o - 120))
                break
            if t < c - 120:
                if r() < 0.03 and c - 1 > t:
                    t = c - 1  # 19:59:59 / 17:59:59: still inside
                break
            d += 1
            t = cal.day_start[d] if d < len(cal.day_start) else t
        else:
            return None
        if t <= self.last or t > self.limit:
            return None
        return t

    def violation(self, rule: str, mid: str | None, system: str | None, day: int) -> None:
        self.violations.append(
            {
                "rule": rule,
                "message_id": mid,
                "account_id": self.uid,
                "system": system,
                "detected_on": self.cal.dates[day],
            }
        )

    # ------------------------------------------------------------ actions
    def log_email(self, new: str) -> None:
        self.prev_email = self.email
        self.email = new
        self.n_emails += 1
        self.changes.append((self.last_d, "e", new))

    def act_signin(self, t: int, kind: int = 0, late: int = 0) -> str:
        return self.emit(t, E_SIGNIN, "", self.chan(), kind, late)

    def address_props(self) -> tuple[str, str]:
        r = self.rng.random
        city, pcs = CITIES[int(r() * len(CITIES))]
        pc = f"{pcs[int(r() * len(pcs))]} {int(r() * 10)}{int(r() * 10)}"
        street = f"{STREETS[int(r() * len(STREETS))]} {1 + int(r() * 180)}"
        if r() < 0.2:
            street += f"/{1 + int(r() * 30)}"
        if r() < 0.1:
            props = f',"properties":{{"city":{_js(city)},"postal_code":"{pc}","country":"CZ"}}'
        else:
            props = f',"properties":{{"street":{_js(street)},"city":{_js(city)},"postal_code":"{pc}","country":"CZ"}}'
        return props, city

    def act_address(self, t: int) -> None:
        props, city = self.address_props()
        if self.rng.random() < 0.15:
            t2 = self.care_slot(self.nxt(t))
            if t2 is None:
                return
            self.emit(t2, E_ADDRESS, props, self.care_ctx())
        else:
            self.emit(self.nxt(t), E_ADDRESS, props, self.chan())
        self.city = city
        self.changes.append((self.last_d, "c", city))

    def act_password(self, t: int, change: bool) -> None:
        r = self.rng.random
        if r() < 0.1:
            t1 = self.care_slot(self.nxt(t))
            if t1 is None:
                return
            ctx = self.care_ctx()
        else:
            t1, ctx = self.nxt(t), self.chan()
        if t1 + 4 * 3600 > self.limit:
            return
        self.emit(t1, E_RESET_REQ, "", ctx)
        self.emit(self.last + 2 + int(r() * 118), E_RESET_MAIL, "", CTX_SYS)
        self.last_reset_mail = self.last
        if change:
            gap = 60 + int(r() * 3540) if r() < 0.8 else 3600 + int(r() * 19 * 3600)
            tc = self.last + gap
            if tc <= self.limit:
                self.emit(tc, E_PWD, "", self.chan())

    def grant_props(self) -> str:
        r = self.rng.random
        nv = NOTICE_VERSIONS[int(r() * len(NOTICE_VERSIONS))]
        if self.hostile_sources > 0:
            self.hostile_sources -= 1
            src = HOSTILE_SOURCE
        else:
            src = GRANT_SOURCES[int(r() * len(GRANT_SOURCES))]
        if r() < 0.1:
            return f',"properties":{{"notice_version":"{nv}"}}'
        return f',"properties":{{"notice_version":"{nv}","source":{_js(src)}}}'

    def act_consent(self, t: int, grant: bool, registration: bool = False) -> None:
        """Emit a consent event with the given value (redundant ones allowed)."""
        r = self.rng.random
        care = not grant and not registration and r() < 0.1
        if care:
            t2 = self.care_slot(self.nxt(t))
            if t2 is None:
                return
            ctx = self.care_ctx()
        else:
            t2, ctx = self.nxt(t), self.chan()
        if r() < 0.3:
            prefs = (SEG_GRANT if grant else SEG_WITHDRAW)[int(r() * 3)]
            ctx = ctx[:-1] + "," + prefs + "}"
            props = "" if r() < 0.5 else ',"properties":{}'
            self.emit(t2, E_SEGMENT, props, ctx)
        elif grant:
            self.emit(t2, E_GRANT, self.grant_props(), ctx)
        else:
            src = "care_center" if care else WITHDRAW_SOURCES[int(r() * len(WITHDRAW_SOURCES))]
            props = "" if r() < 0.05 else f',"properties":{{"source":"{src}"}}'
            self.emit(t2, E_WITHDRAW, props, ctx)
        if grant != self.consented:
            self.consented = grant
            self.changes.append((self.last_d, "k", grant))

    def send_props(self, d: int) -> str:
        r = self.rng.random
        if self.hostile_sends > 0:
            self.hostile_sends -= 1
            cid = _js(HOSTILE_CAMPAIGN)
        else:
            ds = self.cal.dates[d]
            cid = f'"cmp-{ds[2:4]}{ds[5:7]}{ds[8:10]}-{CAMPAIGN_SUFFIX[int(r() * 6)]}"'
        if r() < 0.05:
            return f',"properties":{{"campaign_id":{cid}}}'
        return f',"properties":{{"campaign_id":{cid},"medium":"{MEDIA[int(r() * 5)]}"}}'

    def act_send(self, t: int, kind: int = 0) -> str:
        t = self.nxt(t)
        return self.emit(t, E_SEND, self.send_props(self.cal.day_of(t)), CTX_SYS, kind)

    def act_email_change(self, t: int, via_care: bool = True, kind: int = 0) -> str | None:
        if via_care:
            t2 = self.care_slot(self.nxt(t))
            if t2 is None:
                return None
            ctx = self.care_ctx()
        else:
            t2, ctx = self.nxt(t), self.chan()
        new = self._email(self.n_emails)
        if self.rng.random() < 0.1:
            props = f',"properties":{{"email":"{new}"}}'
        else:
            props = f',"properties":{{"email":"{new}","previous_email":"{self.email}"}}'
        mid = self.emit(t2, E_EMAIL, props, ctx, kind)
        self.log_email(new)
        return mid

    # ------------------------------------------------------------ planting
    def plant(self, rule: str, t: int) -> bool:
        """Plant one event-rule violation at or after ``t`` (before deletion)."""
        cal, r = self.cal, self.rng.random
        # at least 600 s after the last event, so every nxt(t) below returns t
        t = max(t, self.last + 600)
        if t > self.limit:
            return False
        if rule == "email_change_not_via_care_center":
            if self.n_emails >= 7:
                return False
            mid = self.act_email_change(t, via_care=False, kind=1)
        elif rule.startswith("care_ooh") or rule == "care_action_outside_hours":
            t = self.nxt(t)
            d = cal.day_of(t)
            want = {"care_ooh_weekday": False, "care_ooh_special": True}.get(rule)
            cand = None
            for _ in range(10):
                if d >= self.n:
                    return False
                if want is None or cal.special[d] == want:
                    o, c = cal.open[d], cal.close[d]
                    v = r()
                    if want is True:  # forced case: weekend/holiday 09:xx
                        v = 0.9
                    elif want is False:  # forced case: weekday 20:xx
                        v = 0.5
                    if v < 0.3:
                        cand = c  # exactly 18:00:00 / 20:00:00: outside (end exclusive)
                    elif v < 0.75:
                        cand = c + int(r() * 3600)  # 18:xx / 20:xx
                    else:
                        cand = o - 1 - int(r() * 3599)  # 09:xx / 07:xx
                    if self.last + 30 < cand <= self.limit:
                        break
                    cand = None
                d += 1
            if cand is None:
                return False
            if r() < 0.5:
                props, city = self.address_props()
                mid = self.emit(cand, E_ADDRESS, props, self.care_ctx(), 1)
                self.city = city
                self.changes.append((self.last_d, "c", city))
            else:
                mid = self.emit(cand, E_RESET_REQ, "", self.care_ctx(), 1)
            rule = "care_action_outside_hours"
        elif rule == "password_changed_without_reset":
            t = self.nxt(t)
            if self.last_reset_mail is not None and t - self.last_reset_mail <= 25 * 3600:
                t = self.last_reset_mail + 25 * 3600 + 60 + int(r() * 7200)
            if t > self.limit:
                return False
            mid = self.emit(t, E_PWD, "", self.chan(), 1)
        elif rule == "marketing_without_consent":
            if self.consented:
                return False
            mid = self.act_send(t, 1)
        else:  # pragma: no cover
            raise ValueError(rule)
        self.violation(rule, mid, None, self.last_d)
        return True

    # ------------------------------------------------------------ account
    def account(self, a: int, pos: int) -> None:
        cal, rng = self.cal, self.rng
        r = rng.random
        T0, limit = cal.t0, self.limit
        span = cal.t_end - T0
        self.a = a
        self.uid = uid = f"acc_{a:07d}"
        self.seq = 0
        self.evs: list[tuple] = []
        self.last = 0
        self.last_d = 0
        self.changes: list[tuple] = []
        self.last_reset_mail = None
        self.consented = False
        self.prev_email = None
        self.n_emails = 0
        first_chunk = self.index == 0

        female = r() < 0.52
        if female:
            fi = int(r() * len(FIRST_F))
            first, self.first_ascii = FIRST_F[fi], FIRST_F_ASCII[fi]
        else:
            fi = int(r() * len(FIRST_M))
            first, self.first_ascii = FIRST_M[fi], FIRST_M_ASCII[fi]
        li = int(r() * len(LAST_NAMES))
        last = LAST_NAMES[li][1 if female else 0]
        self.last_ascii = LAST_ASCII[li][1 if female else 0]
        if first_chunk and pos in HOSTILE_FIRST_POS:
            first = HOSTILE_FIRST_NAME
        if first_chunk and pos in HOSTILE_LAST_POS:
            last = HOSTILE_LAST_NAME
        city = CITIES[int(r() * len(CITIES))][0]
        if first_chunk and pos in HOSTILE_CITY_POS:
            city = HOSTILE_CITY
        self.city = self.city_init = city

        forced_del = first_chunk and pos in FORCED_DELETION_POS
        rereg = None
        if self.pending_rereg and not forced_del:
            rereg = self.pending_rereg.pop(0)
        if rereg is not None:
            old_uid, old_email, old_del_t = rereg
            room = min(5 * 86400, limit - old_del_t - 86400)
            created = old_del_t + 3600 + int(r() * max(1, room - 3600))
            self.email = old_email
            self.reregs.append({"old_account_id": old_uid, "new_account_id": uid})
        else:
            if r() < 0.6:
                created = T0 + 60 + int(r() * min(3, cal.n) * 86400 * 0.98)
            else:
                created = T0 + 60 + int(r() * (span - 7200))
            self.email = self._email(0)
        created = min(created, limit - 3600)
        self.n_emails = 1

        # deletion plan
        td = None
        if rereg is None and (forced_del or r() < 0.015) and limit - created > 4 * 3600:
            td = created + 1800 + int(r() * (limit - 3 * 3600 - created - 1800))
        end = td if td is not None else limit

        # activity volume
        frac = (end - created) / span
        mean = max(0.0, self.epa * frac * 1.5 - 1.6) / 1.35
        k = min(300, int(mean * rng.expovariate(1.0) + r()))
        times: list[int] = []
        if k and end - created > 600:
            w = end - created - 300
            base = created + 240
            for _ in range(k):
                t = base + int(r() * w)
                if (t - T0) % 86400 < 6 * 3600 and r() < 0.7 and t + 8 * 3600 < end:
                    t += 8 * 3600
                times.append(t)
            times.sort()
        email_idx = -1
        if td is not None and (r() < 0.4 or "email_then_delete" in self.force):
            self.force.discard("email_then_delete")
            if not times:
                times.append(created + (td - created) // 2)
            email_idx = int(r() * len(times))

        # --- registration
        cp = "" if r() < 0.05 else f',"first_name":{_js(first)},"last_name":{_js(last)}'
        self.emit(created, E_CREATED, f',"properties":{{"email":"{self.email}"{cp}}}', self.chan())
        created_day = self.last_d
        init_email = self.email
        if r() < 0.55:
            self.act_consent(self.last + 5 + int(r() * 600), True, registration=True)

        # --- activity
        vr = self.vr
        for i, ta in enumerate(times):
            if self.last > limit - 6 * 3600:
                break
            u = r()
            if i == email_idx:
                self.act_email_change(ta)
            elif u < 0.36:
                self.act_signin(self.nxt(ta))
            elif u < 0.60:
                if self.consented:
                    self.act_send(ta)
                else:
                    self.act_signin(self.nxt(ta))
            elif u < 0.68:
                self.act_address(ta)
            elif u < 0.75:
                self.act_password(ta, True)
            elif u < 0.84:
                self.act_consent(ta, not self.consented)
            elif u < 0.86:
                if self.n_emails < 6:
                    self.act_email_change(ta)
            elif u < 0.88:
                self.act_password(ta, False)
            elif u < 0.89:
                self.act_consent(ta, self.consented)  # redundant: changes nothing
            else:
                self.act_signin(self.nxt(ta))
            if self.force_ev and pos >= 3:
                for rule in self.force_ev:
                    if self.plant(rule, self.last + 600):
                        self.force_ev.remove(rule)
                        break
            elif vr > 0 and r() < vr * 1.3:
                opts = [
                    "email_change_not_via_care_center",
                    "care_action_outside_hours",
                    "password_changed_without_reset",
                ]
                if not self.consented:
                    opts.append("marketing_without_consent")
                self.plant(opts[int(r() * len(opts))], self.last + 60)

        # --- deletion flow
        deleted_t = None
        if td is not None and self.last < limit - 4 * 3600:
            t_req = max(td, self.nxt(self.last + 60))
            gap = 120 + int(r() * 3400) if r() < 0.85 else 3600 + int(r() * 3 * 3600)
            t_del = t_req + 600 + gap  # room for a late sign-in before the request
            if t_del <= limit:
                d_del = cal.day_of(t_del)
                if d_del < self.n - 1 and ("late_after_deletion" in self.force or r() < min(0.5, self.lr * 15)):
                    self.force.discard("late_after_deletion")
                    ts_ = self.nxt(self.last)
                    if ts_ < t_req - 60:
                        d_s = cal.day_of(ts_)
                        arr = min(self.n - 1, d_del + 1 + (1 if r() < 0.3 else 0))
                        self.act_signin(ts_, 2, arr - d_s)
                self.emit(max(t_req, self.nxt(t_req)), E_DEL_REQ, "" if r() < 0.5 else ',"properties":{}', self.chan())
                self.emit(max(t_del, self.last + 120), E_DELETED, "", CTX_SYS)
                deleted_t = self.last
                deleted_ts = self.last_ts
            elif t_req <= limit - 600:
                self.emit(t_req, E_DEL_REQ, "", self.chan())  # confirmation still pending
        elif td is None and r() < 0.004 and self.last < limit - 7200:
            self.emit(self.nxt(self.last), E_DEL_REQ, "", self.chan())  # never confirmed

        # --- post-deletion planted violations
        if deleted_t is not None and vr > 0:
            f_act = "activity_after_deletion" in self.force
            f_mkt = "marketing_without_consent_deleted" in self.force
            if f_act or f_mkt or r() < min(0.5, vr * 20):
                t = deleted_t + 600 + int(r() * 3 * 86400)
                if t <= limit:
                    if f_mkt or (not f_act and r() < 0.4):
                        self.force.discard("marketing_without_consent_deleted")
                        mid = self.emit(t, E_SEND, self.send_props(cal.day_of(t)), CTX_SYS, 1)
                        self.violation("marketing_without_consent", mid, None, self.last_d)
                    else:
                        self.force.discard("activity_after_deletion")
                        v = r()
                        if v < 0.7:
                            mid = self.emit(t, E_SIGNIN, "", self.chan(), 1)
                        elif v < 0.85:
                            mid = self.emit(t, E_RESET_REQ, "", self.chan(), 1)
                        else:
                            mid = self.emit(t, E_ADDRESS, self.address_props()[0], self.chan(), 1)
                        self.violation("activity_after_deletion", mid, None, self.last_d)

        self.finish_account(
            first, last, init_email, created_day, deleted_t, deleted_ts if deleted_t is not None else None
        )

    # ------------------------------------------------------------ per-account output
    def finish_account(
        self, first: str, last: str, init_email: str, created_day: int, deleted_t: int | None, deleted_ts: str | None
    ) -> None:
        cal, r = self.cal, self.rng.random
        n = self.n
        del_day = cal.day_of(deleted_t) if deleted_t is not None else None
        buf, tail = self.buf, self.tail
        blr, dr = self.blr, self.dr
        for rec in self.evs:
            t, d, arr, line, ev, mid, kind = rec
            buf[arr].append((t, line, 0))
            if kind == 1:
                continue
            if del_day is not None and arr > del_day and t < deleted_t:
                self.late_after_del.append(mid)
                continue
            if blr and r() < blr:
                bl, reason = self.bad_line(rec)
                buf[arr].append((t, bl, reason))
            if dr and r() < dr:
                if self.dup_cycle < 3:
                    mode, self.dup_cycle = self.dup_cycle, self.dup_cycle + 1
                else:
                    mode = int(r() * 3)
                if mode == 2 and del_day is None and arr < n - 1:
                    tail[min(n - 1, arr + 1 + int(r() * 3))].append((line, 1))
                elif mode == 1:
                    self.eod.append((arr, line))
                else:
                    tail[arr].append((line, 1))

        # deletions + downstream lag
        lags = {}
        if deleted_t is not None:
            rereg = False
            if ("rereg" in self.force or r() < 0.1) and deleted_t < self.limit - 2 * 86400:
                self.force.discard("rereg")
                self.pending_rereg.append((self.uid, self.email, deleted_t))
                rereg = True
            for s in SYSTEMS:
                u = r()
                lag = 1 + int(r() * 10) if u < 0.75 else (20 + int(r() * 21) if u < 0.96 else _INF)
                if rereg and s != "crm":
                    lag = 0
                lags[s] = lag
        self.segments(first, last, init_email, created_day, del_day, lags)
        if deleted_t is not None:
            dd = date.fromisoformat(cal.dates[del_day])
            clean = {}
            for s in SYSTEMS:
                gone_from = del_day + lags[s] if self.present_at_deletion[s] else del_day
                clean[s] = None
                if gone_from < _INF:
                    for x in self.export_days:
                        if x >= gone_from:
                            clean[s] = cal.dates[x]
                            break
            self.deletions.append(
                {
                    "account_id": self.uid,
                    "deleted_at": deleted_ts,
                    "deleted_on": cal.dates[del_day],
                    "due_date": due_date_for(dd).isoformat(),
                    "downstream_clean_on": clean,
                }
            )

    def segments(
        self, first: str, last: str, init_email: str, created_day: int, del_day: int | None, lags: dict
    ) -> None:
        """End-of-day state per day -> export segments (first day, end day excl., row)."""
        cal, r = self.cal, self.rng.random
        uid = self.uid
        end_day = del_day if del_day is not None else _INF
        # state records: [day, email, city, consented, joined_day]
        recs = [[created_day, init_email, self.city_init, False, None]]
        cur = recs[0][:]
        for d, kind, val in self.changes:
            if kind == "e":
                cur[1] = val
            elif kind == "c":
                cur[2] = val
            else:
                cur[3] = val
                cur[4] = d if val else None
            cur[0] = d
            if recs[-1][0] == d:
                recs[-1] = cur[:]
            else:
                recs.append(cur[:])
        never_deleted = del_day is None
        v = r()
        crm_mode = 0  # 0 normal, 1 id-only row, 2 upper-case e-mail
        ml_email_only = False
        if never_deleted and v < 0.003:
            crm_mode = 1
        elif v < 0.013:
            crm_mode = 2
        if never_deleted and r() < 0.005:
            ml_email_only = True
        fc, lc = _csv(first), _csv(last)
        segs_crm, segs_ml, segs_club = self.segs["crm"], self.segs["marketing_list"], self.segs["club_roster"]

        def add(segs: list, f: int, t: int, row: str) -> None:
            if f >= t:
                return
            if segs and segs[-1][2] is row and segs[-1][1] == f:
                segs[-1] = (segs[-1][0], t, row)
            else:
                segs.append((f, t, row))

        last_crm = last_ml = last_club = None
        for i, rec in enumerate(recs):
            f = rec[0]
            t = recs[i + 1][0] if i + 1 < len(recs) else end_day
            t = min(t, end_day)
            email, city, cons, joined = rec[1], rec[2], rec[3], rec[4]
            em = "" if crm_mode == 1 else (email.upper() if crm_mode == 2 else email)
            row = f"{uid},{em},{fc},{lc},{_csv(city)}\n"
            if last_crm is not None and last_crm == row:
                row = last_crm
            last_crm = row
            add(segs_crm, f, t, row)
            if cons:
                row = f"{email}," + ("" if ml_email_only else uid) + "\n"
                if last_ml is not None and last_ml == row:
                    row = last_ml
                last_ml = row
                add(segs_ml, f, t, row)
                row = f"{uid},{email},{cal.dates[joined]}\n"
                if last_club is not None and last_club == row:
                    row = last_club
                last_club = row
                add(segs_club, f, t, row)

        final = recs[-1]
        self.present_at_deletion = {"crm": True, "marketing_list": bool(final[3]), "club_roster": bool(final[3])}
        if del_day is not None:
            k = del_day
            email = final[1]
            if self.prev_email is not None and r() < 0.5:
                crm_email = self.prev_email  # the CRM never got the change
            else:
                crm_email = email
            if lags["crm"]:
                add(segs_crm, k, k + lags["crm"], f"{uid},{crm_email},{fc},{lc},{_csv(final[2])}\n")
            if final[3]:
                if lags["marketing_list"]:
                    row = f"{email},\n" if r() < 0.3 else f"{email},{uid}\n"
                    add(segs_ml, k, k + lags["marketing_list"], row)
                if lags["club_roster"]:
                    add(segs_club, k, k + lags["club_roster"], f"{uid},{email},{cal.dates[final[4]]}\n")

        # planted export violations: a non-erased account without consent at
        # the end of the export day appears on marketing_list / club_roster.
        if self.vr <= 0:
            return
        f_ml = "marketing_list_without_consent" in self.force
        f_cl = "club_member_without_consent" in self.force
        if not (f_ml or f_cl or r() < self.vr * 2):
            return
        cands = []
        ri = 0
        for x in self.export_days:
            if x < created_day or x >= end_day:
                continue
            while ri + 1 < len(recs) and recs[ri + 1][0] <= x:
                ri += 1
            if not recs[ri][3]:
                cands.append((x, recs[ri][1]))
            else:
                cands.append(None)
        idx = [i for i, c in enumerate(cands) if c is not None]
        if not idx:
            return
        start_i = idx[int(r() * len(idx))]
        run = []
        for c in cands[start_i : start_i + 1 + int(r() * 3)]:
            if c is None:
                break
            run.append(c)
        if f_ml or (not f_cl and r() < 0.5):
            self.force.discard("marketing_list_without_consent")
            system, rule = "marketing_list", "marketing_list_without_consent"
        else:
            self.force.discard("club_member_without_consent")
            system, rule = "club_roster", "club_member_without_consent"
        for x, email in run:
            if system == "marketing_list":
                row = f"{email},{uid}\n"
            else:
                row = f"{uid},{email},{cal.dates[created_day]}\n"
            self.segs[system].append((x, x + 1, row))
        self.violation(rule, None, system, run[0][0])

    # ------------------------------------------------------------ bad lines
    def bad_line(self, rec: tuple) -> tuple[str, str]:
        t, d, arr, line, ev, mid, kind = rec
        cal, r = self.cal, self.rng.random
        cycling = self.bad_cycle < len(REJECT_REASONS)
        if cycling:  # chunk 0: every reason in turn, so small runs cover all
            fam = REJECT_REASONS[self.bad_cycle]
        else:
            fam = REJECT_REASONS[int(r() * len(REJECT_REASONS))]
        req = REQUIRED_PROPS.get(ev)
        if (fam == "missing_property" and not req) or (
            fam == "invalid_email:properties.email" and ev not in (E_CREATED, E_EMAIL)
        ):
            fam = REJECT_REASONS[int(r() * 15)]  # not applicable: a generic defect
        elif cycling:
            self.bad_cycle += 1
        obj = json.loads(line)
        self.seq += 1
        obj["messageId"] = self._mid(0x2000 | self.seq)
        reason = fam
        if fam == "invalid_json":
            s = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
            if r() < 0.7:
                return s[: 1 + int(r() * (len(s) - 3))], reason
            return s.replace('"', "'", 4), reason
        if fam == "not_an_object":
            v = r()
            if v < 0.5:
                return "[" + json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "]", reason
            return (_js(ev) if v < 0.75 else str(1 + int(r() * 99999))), reason
        if fam.startswith("missing_field:"):
            key = fam.split(":", 1)[1]
            if key == "context.channel":
                del obj["context"]["channel"]
            else:
                del obj[key]
        elif fam == "invalid_message_id":
            obj["messageId"] = 100000 + int(r() * 900000) if r() < 0.6 else "m-" + "x7" * 60
        elif fam == "invalid_type":
            obj["type"] = BAD_TYPES[int(r() * 3)]
        elif fam == "unknown_event":
            obj["event"] = UNKNOWN_EVENTS[int(r() * 4)]
        elif fam == "unknown_channel":
            obj["context"]["channel"] = UNKNOWN_CHANNELS[int(r() * 4)]
            obj["context"].pop("agentId", None)
        elif fam == "invalid_timestamp":
            v = r()
            y = cal.dates[d][:4]
            if v < 0.4:
                obj["timestamp"] = f"{y}-13-45T99:00:00Z"
            elif v < 0.7:
                obj["timestamp"] = f"{cal.dates[d]}T25:61:00+01:00"
            else:
                obj["timestamp"] = f"{y}-02-30T10:00:00+01:00"
        elif fam == "timestamp_without_offset":
            obj["timestamp"] = cal.ts_local(t, d, int(r() * 1000) if r() < 0.3 else -1, with_offset=False)
        elif fam == "timestamp_too_late":
            t2 = cal.day_start[arr + 1] + 3601 + int(r() * 2 * 86400)
            obj["timestamp"] = cal.ts_utc(t2)
            obj.pop("sentAt", None)
        elif fam == "missing_property":
            p = req[int(r() * len(req))]
            del obj["properties"][p]
            reason = f"missing_property:{p}"
        elif fam == "invalid_email:properties.email":
            em = obj["properties"]["email"]
            local, _, dom = em.partition("@")
            v = r()
            obj["properties"]["email"] = f"{local}.{dom}" if v < 0.5 else (f"{local}@" if v < 0.75 else f"@{dom}")
        return json.dumps(obj, ensure_ascii=False, separators=(",", ":")), reason

    # ------------------------------------------------------------ run
    def run(self) -> dict:
        r = self.rng.random
        for pos, a in enumerate(range(self.lo, self.hi)):
            self.account(a, pos)
        days = []
        quirks = self.cfg["quirks"]
        for d in range(self.n):
            items = self.buf[d]
            items.sort(key=_first)
            lines = [x[1] for x in items]
            tags = [x[2] for x in items]
            for line, tag in self.tail[d]:
                lines.append(line)
                tags.append(tag)
            if quirks and lines and r() < 0.15:
                at = int(r() * len(lines))
                lines.insert(at, " \t ")
                tags.insert(at, 2)
                self.blank_lines += 1
            days.append((lines, tags))
        self.buf = self.tail = None
        exports = {}
        for s in SYSTEMS:
            segs = self.segs[s]
            exports[s] = ["".join([row for (f, t, row) in segs if f <= x < t]) for x in self.export_days]
        return {
            "index": self.index,
            "accounts": self.hi - self.lo,
            "days": days,
            "eod": self.eod,
            "exports": exports,
            "violations": self.violations,
            "deletions": self.deletions,
            "reregistrations": self.reregs,
            "late_events_after_deletion": self.late_after_del,
            "blank_lines": self.blank_lines,
        }


def _first(x: tuple) -> int:
    return x[0]


def _run_chunk(cfg: dict, index: int, lo: int, hi: int) -> dict:
    return _ChunkSim(cfg, index, lo, hi).run()


# --------------------------------------------------------------------------
# Writing


class _DayWriter:
    def __init__(self, folder: Path, gz: bool, lines_per_file: int, crlf: bool, bom: bool) -> None:
        self.folder = folder
        self.gz = gz
        self.lpf = lines_per_file
        self.sep = "\r\n" if crlf else "\n"
        self.bom = bom
        self.part = -1
        self.raw = None
        self.fh = None
        self.n = 0
        self.files: dict[str, dict] = {}
        self.reasons: Counter = Counter()
        self.cur: dict | None = None

    def _open(self) -> None:
        self.close()
        self.part += 1
        name = f"part-{self.part:04d}.jsonl" + (".gz" if self.gz else "")
        self.raw = open(self.folder / name, "wb")
        if self.gz:
            self.fh = gzip.GzipFile(filename="", mode="wb", fileobj=self.raw, mtime=0, compresslevel=1)
        else:
            self.fh = self.raw
        self.cur = self.files[name] = {"received": 0, "accepted": 0, "duplicates": 0, "rejected": 0}
        self.n = 0
        if self.bom and self.part == 0:
            self.fh.write("\ufeff".encode())

    def write(self, lines: list[str], tags: list) -> None:
        i, total = 0, len(lines)
        if self.fh is None and total == 0:
            return
        while i < total:
            if self.fh is None or self.n >= self.lpf:
                self._open()
            take = min(self.lpf - self.n, total - i)
            part = lines[i : i + take]
            self.fh.write((self.sep.join(part) + self.sep).encode("utf-8"))
            cur = self.cur
            for tag, cnt in Counter(tags[i : i + take]).items():
                if tag == 0:
                    cur["accepted"] += cnt
                elif tag == 1:
                    cur["duplicates"] += cnt
                elif tag == 2:
                    continue
                else:
                    cur["rejected"] += cnt
                    self.reasons[tag] += cnt
                cur["received"] += cnt
            self.n += take
            i += take

    def ensure_file(self) -> None:
        if self.fh is None and self.part < 0:
            self._open()

    def close(self) -> None:
        if self.fh is not None:
            if self.gz:
                self.fh.close()
            self.raw.close()
        self.fh = self.raw = None


def _prepare_out(out: Path) -> None:
    plan = out / "_plan" / "plan.json"
    owned = [out / "events", out / "snapshots", out / "_plan"]
    if plan.exists():
        for p in owned:
            if p.exists():
                shutil.rmtree(p)
    else:
        for p in owned[:2]:
            if p.exists() and any(p.iterdir()):
                raise FileExistsError(f"{p} is not empty and {out} holds no generator plan; refusing to overwrite it")
    out.mkdir(parents=True, exist_ok=True)


def generate(
    out: Path,
    accounts: int,
    days: int,
    start: date,
    seed: int,
    *,
    bad_line_rate: float = 0.002,
    violation_rate: float = 0.002,
    duplicate_rate: float = 0.002,
    late_rate: float = 0.01,
    gzip_every: int = 3,
    export_every: int = 1,
    corrupt_files: int = 0,
    events_per_account: float = 10.0,
    progress: Callable[[str], None] | None = None,
    lines_per_file: int = DEFAULT_LINES_PER_FILE,
    workers: int | None = None,
    quirks: bool = True,
) -> dict:
    """Write a synthetic inbox under ``out`` and return its plan (ground truth).

    ``lines_per_file``: lines per event file before rotating to the next part.
    ``workers``: simulation processes (default: 1 for small runs, else up to
    the CPU count, at most 4).  The output does not depend on it.
    ``quirks``: include contract-tolerated oddities (a BOM, CRLF days, blank
    lines).
    """
    out = Path(out)
    if isinstance(start, str):
        start = date.fromisoformat(start)
    if accounts < 0 or days < 1:
        raise ValueError("accounts must be >= 0 and days >= 1")
    if accounts > 9_999_999:
        raise ValueError("at most 9,999,999 accounts")
    t_start = time.monotonic()
    cal = _calendar(start, days)
    export_days = [i for i in range(days) if export_every > 0 and i % export_every == 0]
    gzip_days = [i for i in range(days) if gzip_every > 0 and i % gzip_every == gzip_every - 1]
    crlf_days = [i for i in range(days) if quirks and i % 9 == 4]
    bom_days = [i for i in range(days) if quirks and i % 11 == 6]
    cfg = {
        "start": start.isoformat(),
        "days": days,
        "seed": int(seed),
        "bad_line_rate": float(bad_line_rate),
        "violation_rate": float(violation_rate),
        "duplicate_rate": float(duplicate_rate),
        "late_rate": float(late_rate),
        "events_per_account": float(events_per_account),
        "export_days": export_days,
        "quirks": bool(quirks),
    }
    _prepare_out(out)
    ev_root = out / "events"
    writers = []
    gz_set, crlf_set, bom_set = set(gzip_days), set(crlf_days), set(bom_days)
    for i in range(days):
        folder = ev_root / cal.dates[i]
        folder.mkdir(parents=True, exist_ok=True)
        writers.append(_DayWriter(folder, i in gz_set, max(1, int(lines_per_file)), i in crlf_set, i in bom_set))
    export_paths = {}
    for s in SYSTEMS:
        sdir = out / "snapshots" / s
        sdir.mkdir(parents=True, exist_ok=True)
        export_paths[s] = [sdir / f"{cal.dates[x]}.csv" for x in export_days]
        for p in export_paths[s]:
            p.write_text(EXPORT_HEADERS[s], encoding="utf-8", newline="")

    chunks = [
        (i, lo, min(accounts + 1, lo + CHUNK_ACCOUNTS)) for i, lo in enumerate(range(1, accounts + 1, CHUNK_ACCOUNTS))
    ]
    if workers is None:
        workers = 1 if accounts <= 2 * CHUNK_ACCOUNTS else min(4, os.cpu_count() or 1)
    workers = max(1, min(int(workers), len(chunks) or 1))

    violations: list[dict] = []
    deletions: list[dict] = []
    reregs: list[dict] = []
    late_after_del: list[str] = []
    eod: dict[int, list[str]] = {}
    blank_lines = 0
    done_accounts = 0
    lines_written = 0

    def consume(res: dict) -> None:
        nonlocal blank_lines, done_accounts, lines_written
        for d, (lines, tags) in enumerate(res["days"]):
            if lines:
                writers[d].write(lines, tags)
                lines_written += len(lines)
        for d, line in res["eod"]:
            eod.setdefault(d, []).append(line)
        for s in SYSTEMS:
            for p, text in zip(export_paths[s], res["exports"][s], strict=True):
                if text:
                    with open(p, "a", encoding="utf-8", newline="") as fh:
                        fh.write(text)
        violations.extend(res["violations"])
        deletions.extend(res["deletions"])
        reregs.extend(res["reregistrations"])
        late_after_del.extend(res["late_events_after_deletion"])
        blank_lines += res["blank_lines"]
        done_accounts += res["accounts"]
        if progress is not None:
            progress(
                f"generate: chunk {res['index'] + 1}/{len(chunks)}, accounts {done_accounts}/{accounts}, "
                f"lines {lines_written}, {time.monotonic() - t_start:.1f}s"
            )

    if workers == 1:
        for c in chunks:
            consume(_run_chunk(cfg, *c))
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as ex:
            pending = []
            it = iter(chunks)
            for c in it:
                pending.append(ex.submit(_run_chunk, cfg, *c))
                if len(pending) >= workers + 1:
                    break
            while pending:
                res = pending.pop(0).result()
                nxt_c = next(it, None)
                if nxt_c is not None:
                    pending.append(ex.submit(_run_chunk, cfg, *nxt_c))
                consume(res)
                del res

    # duplicates kept for the end of their day (usually another file)
    for d in sorted(eod):
        writers[d].write(eod[d], [1] * len(eod[d]))
    for w in writers:
        w.ensure_file()
        w.close()

    # corrupt files on the last days
    corrupt = []
    crng = random.Random(f"synthetic-inbox/{seed}/corrupt")
    for k in range(min(max(0, corrupt_files), days)):
        d = days - 1 - k
        data = bytes(crng.getrandbits(8) for _ in range(200 + crng.randrange(800)))
        data = b"PK\x03\x04" + data  # never the gzip magic
        name = "part-9999.jsonl.gz"
        (ev_root / cal.dates[d] / name).write_bytes(data)
        writers[d].files[name] = {"received": 1, "accepted": 0, "duplicates": 0, "rejected": 1}
        writers[d].reasons[UNREADABLE_FILE_REASON] += 1
        corrupt.append(f"{cal.dates[d]}/{name}")

    plan_days = {}
    tot = Counter()
    for i, w in enumerate(writers):
        files = dict(sorted(w.files.items()))
        agg = Counter()
        for st in files.values():
            agg.update(st)
        day = {k: agg.get(k, 0) for k in ("received", "accepted", "duplicates", "rejected")}
        day["rejected_by_reason"] = dict(sorted(w.reasons.items()))
        day["files"] = files
        plan_days[cal.dates[i]] = day
        tot.update({k: day[k] for k in ("received", "accepted", "duplicates", "rejected")})

    violations.sort(
        key=lambda v: (v["detected_on"], v["rule"], v["account_id"], v["message_id"] or "", v["system"] or "")
    )
    deletions.sort(key=lambda x: (x["deleted_on"], x["account_id"]))
    plan = {
        "params": {
            "accounts": accounts,
            "days": days,
            "start": start.isoformat(),
            "seed": int(seed),
            "bad_line_rate": float(bad_line_rate),
            "violation_rate": float(violation_rate),
            "duplicate_rate": float(duplicate_rate),
            "late_rate": float(late_rate),
            "gzip_every": gzip_every,
            "export_every": export_every,
            "corrupt_files": corrupt_files,
            "events_per_account": float(events_per_account),
            "lines_per_file": int(lines_per_file),
            "quirks": bool(quirks),
        },
        "layout": {
            "gzip_days": [cal.dates[i] for i in gzip_days],
            "export_dates": [cal.dates[i] for i in export_days],
            "crlf_days": [cal.dates[i] for i in crlf_days],
            "bom_days": [cal.dates[i] for i in bom_days],
            "blank_lines": blank_lines,
            "corrupt_files": corrupt,
            "unreadable_file_reason": UNREADABLE_FILE_REASON,
        },
        "totals": {k: tot.get(k, 0) for k in ("received", "accepted", "duplicates", "rejected")},
        "days": plan_days,
        "violations": violations,
        "deletions": deletions,
        "reregistrations": reregs,
        "late_events_after_deletion": sorted(late_after_del),
    }
    (out / "_plan").mkdir(parents=True, exist_ok=True)
    with open(out / "_plan" / "plan.json", "w", encoding="utf-8", newline="\n") as fh:
        json.dump(plan, fh, indent=1, ensure_ascii=True)
        fh.write("\n")
    if progress is not None:
        progress(f"generate: done, {tot['received']} lines, {time.monotonic() - t_start:.1f}s")
    return plan


# --------------------------------------------------------------------------
# CLI


def _date_arg(s: str) -> date:
    try:
        return date.fromisoformat(s)
    except ValueError as e:
        raise argparse.ArgumentTypeError(f"not a YYYY-MM-DD date: {s!r}") from e


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``generate`` options to ``parser``."""
    parser.add_argument("--out", type=Path, required=True, help="inbox directory to write")
    parser.add_argument("--accounts", type=int, required=True, help="number of accounts")
    parser.add_argument("--days", type=int, required=True, help="number of arrival days")
    parser.add_argument("--start", type=_date_arg, required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--seed", type=int, required=True, help="random seed")
    parser.add_argument("--bad-line-rate", type=float, default=0.002)
    parser.add_argument("--violation-rate", type=float, default=0.002)
    parser.add_argument("--duplicate-rate", type=float, default=0.002)
    parser.add_argument("--late-rate", type=float, default=0.01)
    parser.add_argument("--gzip-every", type=int, default=3, help="every N-th day is gzip (0: never)")
    parser.add_argument("--export-every", type=int, default=1, help="export every N days")
    parser.add_argument("--corrupt-files", type=int, default=0, help="unreadable files on the last days")
    parser.add_argument("--events-per-account", type=float, default=10.0)
    parser.add_argument("--lines-per-file", type=int, default=DEFAULT_LINES_PER_FILE)
    parser.add_argument("--workers", type=int, default=None, help="simulation processes (output is the same)")
    parser.add_argument("--no-quirks", dest="quirks", action="store_false", help="no BOM, CRLF or blank lines")
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def main_from_args(args: argparse.Namespace) -> int:
    """Run :func:`generate` from parsed arguments; print a one-line summary."""
    t = time.monotonic()
    quiet = getattr(args, "quiet", False)

    def prog(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        plan = generate(
            args.out,
            args.accounts,
            args.days,
            args.start,
            args.seed,
            bad_line_rate=args.bad_line_rate,
            violation_rate=args.violation_rate,
            duplicate_rate=args.duplicate_rate,
            late_rate=args.late_rate,
            gzip_every=args.gzip_every,
            export_every=args.export_every,
            corrupt_files=args.corrupt_files,
            events_per_account=args.events_per_account,
            lines_per_file=getattr(args, "lines_per_file", DEFAULT_LINES_PER_FILE),
            workers=getattr(args, "workers", None),
            quirks=getattr(args, "quirks", True),
            progress=None if quiet else prog,
        )
    except (FileExistsError, ValueError) as e:
        print(f"generate: error: {e}", file=sys.stderr)
        return 2
    tot = plan["totals"]
    print(
        f"generated {args.accounts} accounts over {args.days} days: {tot['received']} lines "
        f"({tot['accepted']} accepted, {tot['duplicates']} duplicates, {tot['rejected']} rejected), "
        f"{len(plan['violations'])} planted violations, {len(plan['deletions'])} deletions "
        f"in {time.monotonic() - t:.1f}s"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    p = argparse.ArgumentParser(description="synthetic inbox generator")
    add_arguments(p)
    sys.exit(main_from_args(p.parse_args()))
