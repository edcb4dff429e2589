"""The event stream of the account being simulated: ids, accepted lines, timing, planted-violation records."""

from __future__ import annotations

import bisect

from generator.contract import CTX_APP, CTX_SYS, CTX_WEB, E_SIGNIN, LATEABLE
from generator.encoding import b36, mix40, splitmix
from generator.reference import DOMAINS


class EventStream:
    """Emits the current account's accepted events, in strictly increasing time.

    A mixin of :class:`generator.chunk.ChunkSim`, which holds the state it uses.
    """

    # ---------------------------------------------------------------- ids
    def _mid(self, seq: int) -> str:
        return f"m-{splitmix(((self.a << 14) | seq) + self.mid_salt):016x}"

    def _email(self, k: int) -> str:
        tok = b36(mix40(self.a * 8 + k + self.mail_salt), 8)
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
