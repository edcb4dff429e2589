"""Planted event-rule violations: each one breaks exactly one POLICY.md rule."""

from __future__ import annotations

from generator.contract import CTX_SYS, E_ADDRESS, E_PWD, E_RESET_REQ, E_SEND, E_SIGNIN


class Planted:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

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

    def plant_after_deletion(self, deleted_t: int) -> None:
        """Sometimes (always once in chunk 0) an event after the account's deletion."""
        cal, r = self.cal, self.rng.random
        limit, vr = self.limit, self.vr
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
