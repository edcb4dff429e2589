"""The report files' e-mail detector (csvsafe.find_email / report_file_holds_email) and masking.

The CSV formula guard of `@SUM(1+1)`, `'@SUM(1+1)`, is not an address: a check that read it as one
would fail the night, and every later night (violations.csv is cumulative). The detector finds
REAL addresses only, in every form the report files give them (plain, CSV-quoted and
guarded, HTML-escaped, JSON-escaped with or without ensure_ascii), and never fires on what the
files' own escaping makes of a value that held none. Masking (redact) is broader than detection,
so a report written from masked values never fails the check.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import time

import markupsafe
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from assets.reports.csvsafe import (
    EMAIL_PATTERN,
    FORMULA_PREFIXES,
    csv_bytes,
    find_email,
    neutralise,
    redact,
    report_file_holds_email,
)
from assets.reports.html import e

#: The bare masking pattern EMAIL_PATTERN replaced (quadratic on long runs, same result).
BARE_PATTERN = re.compile(r"[^\s@]+@[^\s@]+")


@pytest.mark.parametrize(
    "text",
    [
        "jana.novakova@example.cz",
        "x,a@b.cz,y",
        "Jan.Novak+tag@Mail.Example.CO.UK",
        "ž@příklad.cz",
        "иван@пример.рф",
        "o'brien@example.ie",
        "user_name-1@sub-domain.example.museum",
        "a@b.cz",
        "'jan@example.cz",  # a guarded value that is an address
        "=jan@example.cz",
        "x@xn--80ak6aa92e.xn--p1ai",
        "mail me at jan@example.cz.",
        "jan@example.cz9",  # whatever follows the top-level domain
        "jose\u0301@example.cz",  # decomposed (NFD): the local part ends with a combining mark
        "हिन्दी@उदाहरण.भारत",
        "-@example.cz",  # RFC 5322 atext alone
        "*mER{@A.COM",
        "0/0@a.baiDu",
        "x&@example.cz",
        "x=@example.cz",
    ],
)
def test_real_addresses_are_found(text):
    assert find_email(text) is not None


@pytest.mark.parametrize(
    "text",
    [
        "'@SUM(1+1)",
        "@SUM(1+1)",
        "=1+1",
        "+cmd",
        "-x",
        "&#39;@example.cz",  # markupsafe.escape("'@example.cz"): the page's autoescaping
        "&#34;@example.cz",
        "&#x27;@example.cz",  # html.escape("'@example.cz")
        "&quot;@example.cz",
        "<code>@SUM(1+1)</code>",
        '"\'@SUM(1+1)","x"',  # a guarded CSV cell
        "@import url(x.css)",
        "@media print { nav { position:static; } }",
        "a@b",
        "a@b.c",
        "a@1.2.3.4",
        "a@b.1x",
        "a @b.cz",
        "a@ b.cz",
        "a@@b.cz",
        "'''@example.cz",
        "",
        "no at sign here",
        "50%40example.cz",
    ],
)
def test_escaping_artefacts_and_non_addresses_are_not_found(text):
    assert find_email(text) is None


def test_every_combining_mark_is_in_the_planes_searched():
    import sys
    import unicodedata

    from assets.reports.csvsafe import MARK_PLANES

    outside = [
        cp
        for cp in range(sys.maxunicode + 1)
        if not any(cp in plane for plane in MARK_PLANES) and unicodedata.category(chr(cp)).startswith("M")
    ]
    assert outside == []


@pytest.mark.parametrize("value", ["@SUM(1+1)", "=1+1", "+cmd", "-x", "@x.cz", "\n@x.cz", "\u00a0@x.cz", "'@x.cz"])
def test_a_value_with_no_address_passes_in_every_file(value):
    for name, data in encoded_forms(value, mask=False).items():
        assert not report_file_holds_email(name, data), (name, data)


def test_json_escapes_are_decoded_both_ways():
    # json.dumps escapes a line break before '@' as "\n": searched as text, that is "n@x.cz"
    assert find_email(json.dumps({"v": "\n@example.cz"})) is not None
    assert not report_file_holds_email("summary.json", json.dumps({"v": "\n@example.cz"}).encode())
    # ensure_ascii writes a non-ASCII local part and domain as \uXXXX: still found
    escaped = json.dumps({"v": "ž@příklad.cz"}, ensure_ascii=True)
    assert "@" in escaped and "ž" not in escaped
    assert report_file_holds_email("summary.json", escaped.encode())


@pytest.mark.parametrize("escape", [html.escape, markupsafe.escape])  # o&#x27;@example.ie, o&#39;@example.ie
def test_html_character_references_are_resolved(escape):
    page = f"<p>{escape('o' + chr(39) + '@example.ie')}</p>"
    assert find_email(page) is None  # ";@" as it stands in the file
    assert report_file_holds_email("compliance_report.html", page.encode())


# ---------------------------------------------------------------------------------------------
# Property-based: every escaped form, both directions
# ---------------------------------------------------------------------------------------------

CHARS = st.characters(exclude_categories=["Cs"])  # no lone surrogates: the files are UTF-8
TRICKY = st.sampled_from(
    list("@.'\"=+-\t\r\n &;<>\\/,()%_#x1Ažé")
    + ["\u00a0", "&#x27;", "&#39;", "&#34;", "@SUM(1+1)", ".cz", "example", "@"]
)
ANY_TEXT = st.lists(st.one_of(TRICKY, st.text(CHARS, max_size=4)), max_size=12).map("".join)

#: Characters that end a local part: no address has one right before its '@'.
BREAKERS = list(' \t\r\n\u00a0"<>;\\,()[]:@') + [""]


@st.composite
def texts_without_an_address(draw) -> str:
    """Text by construction without a real address: every '@' is at the start or comes right
    after a character no local part ends with, or has no dotted domain after it."""
    chunks = draw(st.lists(st.text(CHARS.filter(lambda c: c != "@"), max_size=8), min_size=1, max_size=6))
    out = chunks[0]
    for chunk in chunks[1:]:
        if draw(st.booleans()):
            out += draw(st.sampled_from(BREAKERS)) + "@" + chunk
        else:  # an '@' after anything, with no dot before the next whitespace
            out += "@" + chunk.replace(".", "") + " "
    return out


LOCAL_CHARS = st.sampled_from(list("abcxyzABCXYZ0189žéüдяि\u0301") + list("._+-'!#$%&*/=?^`{|}~"))
LABEL = st.text(st.sampled_from(list("abcdexyz0189-žř")), min_size=0, max_size=10).map(lambda s: "a" + s)
TLD = st.sampled_from(["cz", "com", "CO", "museum", "рф", "xn--p1ai", "Org", "info"])


@st.composite
def addresses(draw) -> str:
    if draw(st.booleans()):
        address = draw(st.emails())  # hypothesis' RFC 5322 addresses: `*mER{@A.COM`, `0/0@a.baiDu`
        assume(address.rpartition("@")[0].strip("'"))  # not `'@a.ac`: apostrophes alone are no address here
        return address
    local = draw(st.text(LOCAL_CHARS, min_size=1, max_size=40))
    assume(local.strip("'"))  # apostrophes alone are not an address (the CSV formula guard)
    labels = draw(st.lists(LABEL, min_size=1, max_size=3))
    address = f"{local}@{'.'.join(labels)}.{draw(TLD)}"
    return "".join(c.upper() if draw(st.booleans()) else c for c in address) if draw(st.booleans()) else address


def guarded(value: str) -> str:
    """The CSV formula guard alone (neutralise without the masking)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def encoded_forms(value: str, *, mask: bool) -> dict[str, bytes]:
    """The value as each report file holds it: the real writers when masked, else their escaping only."""
    if mask:
        cells = csv_bytes(["rule", "message_id"], [["r", value]])
        page = f'<td title="{e(value)}"><code>{e(value)}</code></td><p>{e(value)}@import</p>'
    else:
        buffer = io.StringIO(newline="")
        csv.writer(buffer, quoting=csv.QUOTE_ALL, lineterminator="\r\n").writerow(["r", guarded(value), "x"])
        cells = buffer.getvalue().encode()
        escaped = str(markupsafe.escape(value))  # the page's autoescaping (Jinja2)
        page = f'<td title="{escaped}"><code>{escaped}</code></td><p>{escaped}@import</p>'
    held = redact(value) if mask else value  # summary.json holds figures only: masked like any value
    return {
        "violations.csv": cells,
        "compliance_report.html": page.encode(),
        "summary.json": (json.dumps({"v": held, held: 1}, indent=2, ensure_ascii=False) + "\n").encode(),
        "summary.ascii.json": json.dumps({"v": [held]}, ensure_ascii=True).encode(),
    }


@settings(max_examples=400, deadline=None)
@given(texts_without_an_address())
def test_no_address_in_the_value_means_no_alarm_in_any_file(value):
    assert find_email(value) is None
    for name, data in encoded_forms(value, mask=False).items():
        assert not report_file_holds_email(name, data), (name, data)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT)
def test_escaping_never_makes_an_address(value):
    """Whatever the value, the escaped files hold an address exactly when the value does."""
    found = find_email(value) is not None
    for name, data in encoded_forms(value, mask=False).items():
        assert report_file_holds_email(name, data) is found, (name, data)


@settings(max_examples=400, deadline=None)
@given(ANY_TEXT, addresses(), ANY_TEXT)
def test_a_real_address_is_found_in_every_form(prefix, address, suffix):
    value = prefix + address + suffix
    assert find_email(address) is not None
    assert find_email(value) is not None
    for name, data in encoded_forms(value, mask=False).items():
        assert report_file_holds_email(name, data), (name, data)


@settings(max_examples=400, deadline=None)
@given(st.one_of(ANY_TEXT, st.builds(lambda p, a, s: p + a + s, ANY_TEXT, addresses(), ANY_TEXT)))
def test_masking_and_detection_agree(value):
    """A real address is always masked, and a report written from masked values never fails."""
    if find_email(value) is not None:
        assert redact(value) != value
    assert find_email(redact(value)) is None
    assert find_email(neutralise(value)) is None
    for name, data in encoded_forms(value, mask=True).items():
        assert not report_file_holds_email(name, data), (name, data)


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "@", " ", "\n", "\t", ",", "ž", ".", "'"]), max_size=40))
def test_masking_replaces_exactly_what_the_bare_pattern_replaces(text):
    assert EMAIL_PATTERN.sub("#", text) == BARE_PATTERN.sub("#", text)


# ---------------------------------------------------------------------------------------------
# Linear time: a report file is megabytes of keys; a value can be long
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        ",".join(["0123456789abcdef" * 4] * 20_000),  # a CSV line of keys, no '@'
        "a" * 300_000 + "@",
        "@" + "a" * 300_000,
        "a@" * 150_000,
        ("a" + "'" * 63 + "@") * 5_000,
        "x@" + "a" * 300_000,
        "x@" + "a." * 150_000,
        "'" * 300_000 + "@x.cz",
    ],
    ids=[
        "keys",
        "run then @",
        "@ then run",
        "a@ repeated",
        "punctuation local parts",
        "long label",
        "many labels",
        "punctuation run",
    ],
)
def test_detection_and_masking_take_linear_time(text):
    started = time.perf_counter()
    find_email(text)
    report_file_holds_email("compliance_report.html", text.encode())
    redact(text)
    # quadratic work on 300,000 characters takes minutes; linear takes milliseconds
    assert time.perf_counter() - started < 5
