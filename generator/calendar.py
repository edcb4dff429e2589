"""The period's local-day geometry: Europe/Prague days, DST, Customer Care hours, CZ holidays."""

from __future__ import annotations

import bisect
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Europe/Prague")
_HMS: list[str] = []


def _hms() -> list[str]:
    if not _HMS:
        _HMS.extend(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))
    return _HMS


def due_date_for(d: date) -> date:
    """Local date of the deletion + 1 calendar month, clamped to month end."""
    y, m = (d.year + 1, 1) if d.month == 12 else (d.year, d.month + 1)
    nxt_first = date(y + 1, 1, 1) if m == 12 else date(y, m + 1, 1)
    last_day = (nxt_first - timedelta(days=1)).day
    return date(y, m, min(d.day, last_day))


class Calendar:
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


_CAL_CACHE: dict[tuple[date, int], Calendar] = {}


def calendar_for(start: date, days: int) -> Calendar:
    key = (start, days)
    cal = _CAL_CACHE.get(key)
    if cal is None:
        _CAL_CACHE.clear()
        cal = _CAL_CACHE[key] = Calendar(start, days)
    return cal
