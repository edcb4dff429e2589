"""Marketing messages sent to an account."""

from __future__ import annotations

from generator.contract import CTX_SYS, E_SEND
from generator.encoding import js
from generator.reference import CAMPAIGN_SUFFIX, HOSTILE_CAMPAIGN, MEDIA


class Marketing:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

    def send_props(self, d: int) -> str:
        r = self.rng.random
        if self.hostile_sends > 0:
            self.hostile_sends -= 1
            cid = js(HOSTILE_CAMPAIGN)
        else:
            ds = self.cal.dates[d]
            cid = f'"cmp-{ds[2:4]}{ds[5:7]}{ds[8:10]}-{CAMPAIGN_SUFFIX[int(r() * 6)]}"'
        if r() < 0.05:
            return f',"properties":{{"campaign_id":{cid}}}'
        return f',"properties":{{"campaign_id":{cid},"medium":"{MEDIA[int(r() * 5)]}"}}'

    def act_send(self, t: int, kind: int = 0) -> str:
        t = self.nxt(t)
        return self.emit(t, E_SEND, self.send_props(self.cal.day_of(t)), CTX_SYS, kind)
