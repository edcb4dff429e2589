"""Small encoders: JSON and CSV literals, ASCII folding, and the integer mixes behind ids."""

from __future__ import annotations

import json
import unicodedata

_M64 = (1 << 64) - 1
M40 = (1 << 40) - 1
_B36 = "0123456789abcdefghijklmnopqrstuvwxyz"


def ascii_fold(s: str) -> str:
    return "".join(
        c for c in unicodedata.normalize("NFKD", s).encode("ascii", "ignore").decode().lower() if c.isalnum()
    )


def js(s: str) -> str:
    """JSON string literal (with quotes), UTF-8 kept."""
    return json.dumps(s, ensure_ascii=False)


def csv_field(s: str) -> str:
    if any(c in s for c in ',"\r\n'):
        return '"' + s.replace('"', '""') + '"'
    return s


def splitmix(x: int) -> int:
    x &= _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def mix40(x: int) -> int:
    """A bijection on 40-bit integers."""
    x &= M40
    x ^= x >> 19
    x = (x * 0x9E3779B97F4A7C15) & M40
    x ^= x >> 17
    x = (x * 0xBF58476D1CE4E5B9) & M40
    x ^= x >> 21
    return x


def b36(x: int, width: int) -> str:
    out = []
    for _ in range(width):
        x, r = divmod(x, 36)
        out.append(_B36[r])
    return "".join(out)
