"""Values from the data, made safe for report files: no e-mail addresses, no spreadsheet formulas.

Every value taken from the data is hostile when rendered. The HTML page autoescapes it (html.py);
the CSV files neutralise formula injection here: a cell starting with ``=``, ``+``, ``-``, ``@``,
a tab or a carriage return is prefixed with a single quote, so a spreadsheet shows it as text
(OWASP "CSV injection"). Every field is quoted and the files are UTF-8.

As a last line of defence, anything shaped like an e-mail address is replaced in every report
value, whatever column it came from (a message id or a file name can hold one).

Two patterns, one broad and one precise, so that they always agree:

- masking (EMAIL_PATTERN, `redact`) is broad: any '@' with a character other than whitespace and
  '@' on each side, so `a@b` and `x@SUM(1)` go too;
- the report check (`find_email`, `report_file_holds_email`) looks for REAL addresses only: a local
  part (not apostrophes alone), then a domain of dot-separated labels whose last one starts with
  two letters. Everything it finds is inside something masking replaces, so a report written from
  masked values never fails the check, while the escaping the files need (the CSV formula guard
  `'@SUM(1+1)`, HTML's `&#39;@`, `&#34;@`, a `>@` beside markup, CSS's `@media`) never looks like
  an address to it. A looser check (an '@' between two characters other than whitespace and '@')
  would read `'@S` as an address: one data value starting with '@' would fail the night, and
  every later night with it, as violations.csv is cumulative.
"""

from __future__ import annotations

import csv
import functools
import html
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Masking: a run of characters other than whitespace and '@', an '@', and another such run. The
#: lookbehind starts a match only where a run starts, and the runs are possessive, so that
#: substituting is linear in the value's length (a bare `[^\s@]+@[^\s@]+` rescans a long run from
#: each of its positions); it replaces exactly what the bare pattern replaces.
EMAIL_PATTERN = re.compile(r"(?<![^\s@])[^\s@]++@[^\s@]++")
EMAIL_PLACEHOLDER = "[e-mail removed]"

#: Detection: a real address (the RFC 5322 / RFC 6531 shape, as far as text can tell), matched
#: from the local part's last character that is not an apostrophe:
#: - that character: a letter, digit or combining mark of any script (RFC 6531 allows non-ASCII
#:   local parts), or an RFC 5322 "atext" sign other than ' (``!#$%&*+-/=?^_`{|}~`` and the dot),
#:   then at most 63 apostrophes up to the '@' (`o'brien@`, `jan+tag@`, `x'@`). A local part of
#:   apostrophes alone is not an address: it is what quoting leaves before an '@' (`'@x.cz` is
#:   also the CSV formula guard of `@x.cz`);
#: - labels of letters, digits, marks, '-' and '_' (IDN labels too), each followed by a dot;
#: - a top-level domain starting with two letters (`.cz`, `.COM`, `.рф`, `.xn--p1ai`). What
#:   follows is not looked at: the address is there whatever text comes after it.
#: Never part of a local part, so never read as one: whitespace, '@', `"` (CSV quoting), `\` (JSON
#: escapes), `;` (the end of every HTML character reference: `&#39;@`, `&#x27;@`, `&quot;@`), `<>` (markup
#: beside a value: `<code>@SUM(1+1)</code>`), `(),:[]`.
#: Not addresses: `'@SUM(1+1)`, `'@x.cz`, `&#39;@x.cz`, `>@x.cz`, `@import`, `a@b`, `a@b.c`,
#: `a@1.2.3.4`. Not looked for:
#: - percent-encoded addresses (`jan%40x.cz`): no report file holds a URL built from data (the
#:   page's only links are `#rule-<id>` fragments and `remediation/<file>`, whose names are
#:   machine-made or keyed: safe_text.system_file_name), and masking leaves `%40` as it is, so the
#:   check would fire on values that hold no '@' at all;
#: - quoted local parts (`"jan novak"@x.cz`): a closing quote cannot be told from CSV quoting;
#:   masking removes them (`novak"@x.cz` is one run).
#: Everything found is inside what EMAIL_PATTERN masks, and every report value is masked.
#:
#: A maintained validator (`email-validator`, not installed; `validators`, installed) tells whether
#: a whole string IS an address. The check must FIND one inside arbitrary text in linear time,
#: which neither does; hence a regular expression, tested both ways with hypothesis
#: (tests/reports/test_email_search.py).
_ATEXT_SIGNS = "!#$%&*+/=?^`{|}~.\\-"  # RFC 5322 atext besides letters, digits and '_' (in \w); no '


#: The planes that hold combining marks (0, 1 and the variation selectors of 14; a test checks
#: that no other plane holds one in this Python's Unicode database).
MARK_PLANES = (range(0, 0x20000), range(0xE0000, 0xE1000))


@functools.cache
def _combining_marks() -> str:
    """A character-class body of every combining mark (categories Mn, Mc, Me): `re` has no \\p{M},
    and `\\w` leaves marks out, so that a decomposed `josé` (e + U+0301) or a Devanagari name
    would end its local part at the mark. Built once, on first use (~0.1 s)."""
    ranges = []
    for plane in MARK_PLANES:
        start = None
        for cp in [*plane, plane.stop]:
            mark = cp in plane and unicodedata.category(chr(cp)).startswith("M")
            if mark and start is None:
                start = cp
            elif not mark and start is not None:
                ranges.append(f"{chr(start)}-{chr(cp - 1)}")
                start = None
    return "".join(ranges)


@functools.cache
def _local_end() -> re.Pattern[str]:
    """The local part's last character that is not an apostrophe."""
    return re.compile(rf"[\w{_ATEXT_SIGNS}{_combining_marks()}]")


@functools.cache
def _candidates() -> re.Pattern[str]:
    """Every '@' after a local-part character (or an apostrophe) and before a domain. The pattern
    starts with the literal '@', so the search skips from one '@' to the next at C speed (20 ms
    for 6 MB of violations.csv; a pattern starting with the local part tried every position and
    took 0.8 s), and the local part's end is then found from the '@' backwards."""
    marks = _combining_marks()
    label = rf"[^\W_][\w{marks}-]{{0,62}}\."
    tld = rf"[^\W\d_](?:[^\W\d_]|[{marks}])"
    return re.compile(rf"@(?<=[\w{_ATEXT_SIGNS}{marks}']@)(?:{label})+{tld}")


#: At most this many apostrophes between the local part's last other character and the '@'.
_MAX_APOSTROPHES = 63


def find_email(text: str) -> str | None:
    """The first real e-mail address in plain text (from the local part's last character that is
    not an apostrophe to the second character of the top-level domain), or None. Linear time:
    each '@' is looked at once, and at most 63 characters before it."""
    if "@" not in text:
        return None
    local_end = _local_end()
    for match in _candidates().finditer(text):
        at = match.start()
        end = at - 1
        while end >= 0 and text[end] == "'" and at - end <= _MAX_APOSTROPHES:
            end -= 1
        if end >= 0 and local_end.match(text, end):
            return text[end : match.end()]
    return None


def _json_strings(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _json_strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _json_strings(item)


def report_file_holds_email(name: str, data: bytes) -> bool:
    """Whether a report file holds a real e-mail address, in any form its format can give it.

    Each format is read as what it encodes, so that its escaping can neither hide an address nor
    look like one: JSON strings are decoded (`\\u017e@x.cz` is `ž@x.cz`; `\\n@x.cz` is a line
    break and `@x.cz`, no address); the page is searched as it is and with its character
    references resolved (`o&#39;brien@x.cz`); a CSV is searched as it is (RFC 4180 quoting only
    doubles `"`, which is never part of a local part, and the formula guard `'` comes right after
    a quote: an apostrophe alone is no local part).
    """
    text = data.decode("utf-8", "replace")
    if "@" not in text:
        return False
    if name.endswith(".json"):
        try:
            return any(find_email(s) for s in _json_strings(json.loads(text)))
        except ValueError:
            pass  # not JSON (the summary check fails on it): searched as text
    if name.endswith((".html", ".htm")):
        return find_email(text) is not None or find_email(html.unescape(text)) is not None
    return find_email(text) is not None


def redact(value: Any) -> str:
    """The value as text, with anything shaped like an e-mail address removed."""
    text = "" if value is None else str(value)
    return EMAIL_PATTERN.sub(EMAIL_PLACEHOLDER, text) if "@" in text else text


def neutralise(value: Any) -> str:
    """A CSV cell: redacted, and prefixed with ' when a spreadsheet would read it as a formula."""
    text = redact(value)
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """RFC 4180 CSV (CRLF, every field quoted), UTF-8 without BOM, every cell neutralised."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n")
    writer.writerow([neutralise(h) for h in header])
    for row in rows:
        writer.writerow([neutralise(v) for v in row])
    return buffer.getvalue().encode("utf-8")
