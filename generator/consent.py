"""Marketing consent: grants, withdrawals and Segment consent preferences."""

from __future__ import annotations

from generator.contract import E_GRANT, E_SEGMENT, E_WITHDRAW, SEG_GRANT, SEG_WITHDRAW
from generator.encoding import js
from generator.reference import GRANT_SOURCES, HOSTILE_SOURCE, NOTICE_VERSIONS, WITHDRAW_SOURCES


class Consent:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

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
        return f',"properties":{{"notice_version":"{nv}","source":{js(src)}}}'

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
