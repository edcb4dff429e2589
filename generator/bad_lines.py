"""Bad lines: a copy of an accepted line, broken in one way, with its rejection reason."""

from __future__ import annotations

import json

from generator.contract import E_CREATED, E_EMAIL, REJECT_REASONS, REQUIRED_PROPS
from generator.encoding import js

UNKNOWN_EVENTS = ("Order Completed", "Product Viewed", "Cart Updated", "Newsletter Opened")
UNKNOWN_CHANNELS = ("kiosk", "pos", "phone", "email")
BAD_TYPES = ("identify", "page", "screen")


class BadLines:
    """A mixin of :class:`generator.chunk.ChunkSim`."""

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
            return (js(ev) if v < 0.75 else str(1 + int(r() * 99999))), reason
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
