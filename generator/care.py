"""Account changes, some through Customer Care (within its hours): address, password, e-mail."""

from __future__ import annotations

from generator.contract import CTX_CARE, CTX_SYS, E_ADDRESS, E_EMAIL, E_PWD, E_RESET_MAIL, E_RESET_REQ
from generator.encoding import js
from generator.reference import CITIES, STREETS


class CareCenter:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

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

    def address_props(self) -> tuple[str, str]:
        r = self.rng.random
        city, pcs = CITIES[int(r() * len(CITIES))]
        pc = f"{pcs[int(r() * len(pcs))]} {int(r() * 10)}{int(r() * 10)}"
        street = f"{STREETS[int(r() * len(STREETS))]} {1 + int(r() * 180)}"
        if r() < 0.2:
            street += f"/{1 + int(r() * 30)}"
        if r() < 0.1:
            props = f',"properties":{{"city":{js(city)},"postal_code":"{pc}","country":"CZ"}}'
        else:
            props = f',"properties":{{"street":{js(street)},"city":{js(city)},"postal_code":"{pc}","country":"CZ"}}'
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
