"""One account's life: identity, registration, activity, deletion, then its lines and deletion record."""

from __future__ import annotations

from datetime import date

from generator.calendar import due_date_for
from generator.contract import CTX_SYS, E_CREATED, E_DEL_REQ, E_DELETED, SYSTEMS
from generator.encoding import js
from generator.exports import INF
from generator.reference import (
    CITIES,
    FIRST_F,
    FIRST_F_ASCII,
    FIRST_M,
    FIRST_M_ASCII,
    FORCED_DELETION_POS,
    HOSTILE_CITY,
    HOSTILE_CITY_POS,
    HOSTILE_FIRST_NAME,
    HOSTILE_FIRST_POS,
    HOSTILE_LAST_NAME,
    HOSTILE_LAST_POS,
    LAST_ASCII,
    LAST_NAMES,
)


class AccountLifecycle:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

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
        cp = "" if r() < 0.05 else f',"first_name":{js(first)},"last_name":{js(last)}'
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
        deleted_t, deleted_ts = self.deletion_flow(td)

        # --- post-deletion planted violations
        if deleted_t is not None and vr > 0:
            self.plant_after_deletion(deleted_t)

        self.finish_account(first, last, init_email, created_day, deleted_t, deleted_ts)

    def deletion_flow(self, td: int | None) -> tuple[int | None, str | None]:
        """Request, then confirm, the deletion planned at ``td``; (deletion time, its timestamp) once confirmed."""
        cal, r = self.cal, self.rng.random
        limit = self.limit
        deleted_t = deleted_ts = None
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
        return deleted_t, deleted_ts

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
                lag = 1 + int(r() * 10) if u < 0.75 else (20 + int(r() * 21) if u < 0.96 else INF)
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
                if gone_from < INF:
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
