"""Full end-of-day exports (crm, marketing_list, club_roster) as per-account segments.

A segment is (first day, end day exclusive, CSV row).  A downstream lag keeps
erased accounts in an export for a while.  Planted export violations are
evaluated against consent at the end of the export's own date.
"""

from __future__ import annotations

from generator.contract import SYSTEMS
from generator.encoding import csv_field

#: A day (or a lag) beyond any period: "never".
INF = 10**9


def export_texts(segs: dict[str, list], export_days: list[int]) -> dict[str, list[str]]:
    """Each system's rows on each export day, as one text per export day."""
    exports = {}
    for s in SYSTEMS:
        rows = segs[s]
        exports[s] = ["".join([row for (f, t, row) in rows if f <= x < t]) for x in export_days]
    return exports


class Exports:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

    def segments(
        self, first: str, last: str, init_email: str, created_day: int, del_day: int | None, lags: dict
    ) -> None:
        """End-of-day state per day -> export segments (first day, end day excl., row)."""
        cal, r = self.cal, self.rng.random
        uid = self.uid
        end_day = del_day if del_day is not None else INF
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
        fc, lc = csv_field(first), csv_field(last)
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
            row = f"{uid},{em},{fc},{lc},{csv_field(city)}\n"
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
                add(segs_crm, k, k + lags["crm"], f"{uid},{crm_email},{fc},{lc},{csv_field(final[2])}\n")
            if final[3]:
                if lags["marketing_list"]:
                    row = f"{email},\n" if r() < 0.3 else f"{email},{uid}\n"
                    add(segs_ml, k, k + lags["marketing_list"], row)
                if lags["club_roster"]:
                    add(segs_club, k, k + lags["club_roster"], f"{uid},{email},{cal.dates[final[4]]}\n")

        self.plant_export_violation(recs, created_day, end_day)

    def plant_export_violation(self, recs: list, created_day: int, end_day: int) -> None:
        """Planted export violations: a non-erased account without consent at
        the end of the export day appears on marketing_list / club_roster."""
        cal, r = self.cal, self.rng.random
        uid = self.uid
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
