"""One retained inbox line with an erased subject's identifiers replaced (CONTRACT 5), in Python.

The line is parsed as JSON when it is one: every string (key or value) and number in which a target
stands as a token gets it replaced, and on the subject's own line (its ``userId`` is a target) the
personal properties' values (names, address) become ``[erased]`` too. When replacing the tokens where
they stand in the line's text gives that same JSON, the rest of the line keeps its bytes; otherwise
it is written back compactly, numbers and repeated keys as they were. A line that is not JSON is
redacted as text, or, when it is the subject's own, replaced whole by ``[erased]``. Which lines and
which tokens: ``inbox_redaction.py``.
"""

from __future__ import annotations

import hashlib
import json
import re

from assets.landing.contract import MESSAGE_ID_MAX, PERSONAL_PROPERTIES
from assets.purge.tokens import USER_ID_RE

#: What a whole line becomes when its identifiers cannot be replaced where they stand.
ERASED_LINE = "[erased]"
#: What a personal property's value (a name, an address value) becomes on the subject's own line.
ERASED_VALUE = "[erased]"
#: Properties that are not identifiers and are replaced only as tokens: the e-mails, by their key.
_VALUE_PROPERTIES = tuple(p for p in PERSONAL_PROPERTIES if p not in ("email", "previous_email"))


class _Raw(str):
    """A JSON number kept as the text it was written with. Equal only to the same number: never to
    a string of the same text, so that two parsed values are equal exactly when their JSON is."""

    __slots__ = ()
    __hash__ = str.__hash__

    def __eq__(self, other: object) -> bool:
        return type(other) is _Raw and str.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


class _Obj(list):
    """A JSON object as its (key, value) pairs, so repeated keys and their order survive. Equal only
    to an object with the same pairs in the same order, never to an array."""

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]

    def __eq__(self, other: object) -> bool:
        return type(other) is _Obj and list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)


def _reject_constant(name: str) -> None:
    raise ValueError(name)  # NaN / Infinity are not JSON (the contract rejects such lines)


def _parse_object(text: str):
    return json.loads(text, object_pairs_hook=_Obj, parse_float=_Raw, parse_int=_Raw, parse_constant=_reject_constant)


_SURROGATE = re.compile("[\ud800-\udfff]")


def _dump_string(value: str) -> str:
    text = json.dumps(value, ensure_ascii=False)
    # a lone surrogate (written as an escape in the line) cannot be UTF-8: it stays an escape
    return json.dumps(value) if _SURROGATE.search(text) else text


def _dump(value) -> str:
    """Compact JSON of a parsed value, numbers and repeated keys as they were."""
    if isinstance(value, _Raw):
        return str(value)
    if isinstance(value, str):
        return _dump_string(value)
    if isinstance(value, _Obj):
        return "{" + ",".join(f"{_dump_string(k)}:{_dump(v)}" for k, v in value) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value)  # true, false, null


def _is_word(ch: str) -> bool:
    r"""A character of a word, as the regular expression ``\w`` has it: alphanumeric or '_'."""
    return ch.isalnum() or ch == "_"


def _replace_standing(text: str, tok: str, replacement: str) -> str:
    r"""Every occurrence of `tok` that stands whole (no word character just before or after it),
    left to right and without overlaps, replaced: what ``re.sub(r"(?<!\w)tok(?!\w)")`` does,
    without compiling a pattern for each token (every erased subject has its own)."""
    pieces, start, at, size = [], 0, text.find(tok), len(tok)
    while at >= 0:
        end = at + size
        if (at == 0 or not _is_word(text[at - 1])) and (end == len(text) or not _is_word(text[end])):
            pieces += (text[start:at], replacement)
            start, at = end, text.find(tok, end)
        else:
            at = text.find(tok, at + 1)
    return "".join([*pieces, text[start:]]) if pieces else text


#: A line's replacements as (token, replacement) pairs, the longest token first.
Ordered = list[tuple[str, str]]


def _ordered(replacements: dict[str, str]) -> Ordered:
    return [(tok, replacements[tok]) for tok in sorted(replacements, key=lambda t: (-len(t), t))]


def _replace_tokens(text: str, replacements: Ordered) -> str:
    """Every occurrence of a token that stands whole (not inside a longer word) replaced, the
    longest token first."""
    for tok, replacement in replacements:
        if tok in text:
            text = _replace_standing(text, tok, replacement)
    return text


def _walk(value, replacements: Ordered):
    if isinstance(value, _Obj):
        return _Obj([(_replace_tokens(k, replacements), _walk(v, replacements)) for k, v in value])
    if isinstance(value, list):
        return [_walk(v, replacements) for v in value]
    if isinstance(value, _Raw):
        replaced = _replace_tokens(value, replacements)
        return value if str.__eq__(replaced, value) else str(replaced)  # a number that held an id: a string
    if isinstance(value, str):
        return _replace_tokens(value, replacements)
    return value


def _erase_personal_values(obj: _Obj) -> _Obj:
    """The subject's own line: its names and address values go, whatever they are."""
    out = _Obj()
    for k, v in obj:
        if k == "properties" and isinstance(v, _Obj):
            v = _Obj((p, ERASED_VALUE if p in _VALUE_PROPERTIES and v_ is not None else v_) for p, v_ in v)
        out.append((k, v))
    return out


def _keep_message_id_verdict(original: _Obj, redacted: _Obj) -> _Obj:
    """A messageId that its replacements take across MESSAGE_ID_MAX (a longer id or e-mail in its
    place) is put back on its side of it, so the line keeps its verdict: one that fitted becomes
    ``erased:<sha256 of the redacted messageId>`` (71 characters, equal for equal ones), one that did
    not is padded with ``~`` past the limit."""
    out = _Obj()
    for (key, before), (_, after) in zip(original, redacted, strict=True):
        if key == "messageId" and isinstance(before, str) and isinstance(after, str) and str.__ne__(after, before):
            if len(before) <= MESSAGE_ID_MAX < len(after):
                after = "erased:" + hashlib.sha256(after.encode("utf-8", "surrogatepass")).hexdigest()
            elif len(after) <= MESSAGE_ID_MAX < len(before):
                after = after + "~" * (MESSAGE_ID_MAX + 1 - len(after))
        out.append((key, after))
    return out


def _same_json(text: str, value: _Obj) -> bool:
    """`text` parses to `value`: the same JSON (the parsed values' own equality, ``_Raw``, ``_Obj``)."""
    try:
        return _parse_object(text) == value
    except (ValueError, RecursionError):
        return False


def _user_ids(text: str) -> list[str]:
    """The userIds a line that is not JSON names (``USER_ID_RE``, as the scan finds them)."""
    found = []
    for raw in re.findall(USER_ID_RE, text):
        try:
            found.append(json.loads(f'"{raw}"'))
        except ValueError:
            found.append(raw)
    return found


_EDGES = re.compile(r"^(\ufeff?)(\s*)(.*?)(\s*)$", re.DOTALL)


def redact_line(line: str, replacements: dict[str, str], own_accounts: set[str], *, as_text: bool = False) -> str:
    """The line with every token in `replacements` replaced; an own line of an erased subject
    (its userId is in `own_accounts`) also loses its personal values, or, when it is not JSON, is
    replaced whole by ``[erased]``. Whitespace, a BOM and a CR around it stay. With `as_text` (a file
    that is not UTF-8 or not gzip) it is never parsed and only its tokens are replaced."""
    bom, lead, body, trail = _EDGES.match(line).groups()
    ordered = _ordered(replacements)
    obj = None
    if not as_text:
        try:
            obj = _parse_object(body)
        except (ValueError, RecursionError):
            pass
    if isinstance(obj, _Obj):
        user_id = next((v for k, v in obj if k == "userId"), None)
        # str(): a numeric userId (a _Raw, equal to no str) is the subject's own line all the same
        own = _erase_personal_values(obj) if isinstance(user_id, str) and str(user_id) in own_accounts else obj
        redacted = _keep_message_id_verdict(obj, _walk(own, ordered))
        in_place = _replace_tokens(body, ordered)  # the rest of the line keeps its bytes
        body = in_place if _same_json(in_place, redacted) else _dump(redacted)
    elif not as_text and any(u in own_accounts for u in _user_ids(body)):
        body = ERASED_LINE
    else:
        body = _replace_tokens(body, ordered)
    return f"{bom}{lead}{body}{trail}"


def erased_whole(line: str) -> bool:
    """The line (a BOM and whitespace around it aside) is ``[erased]``: it was replaced whole."""
    return _EDGES.match(line).group(3) == ERASED_LINE
