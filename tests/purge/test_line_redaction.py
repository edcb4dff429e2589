"""The line redaction's own parts, against what they stand for.

``_replace_standing`` finds a token where it stands whole with ``str.find`` (a night erasing 10,000
subjects compiled a regular expression for each of their tokens): it must replace exactly what
``re.sub(r"(?<![\\w])tok(?![\\w])")`` replaces. ``_same_json`` compares parsed values by their own
equality instead of dumping both: it must agree with comparing the dumps, for numbers against
strings of the same text and objects against arrays too.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from assets.purge.line_redaction import (
    _dump,
    _ordered,
    _parse_object,
    _replace_standing,
    _replace_tokens,
    _same_json,
    redact_line,
)

#: Characters that make the boundaries interesting: word characters of several scripts, digits
#: (including non-ASCII ones), '_', separators, an e-mail's '@' and a lone surrogate.
ALPHABET = st.sampled_from(list('ab_1٣éΣ@.-: "\\{}[]') + ["\udc80", "²"])
TEXT = st.text(ALPHABET, max_size=30)
TOKEN = st.text(ALPHABET, min_size=1, max_size=4)


def by_regex(text: str, tok: str, replacement: str) -> str:
    return re.compile(rf"(?<![\w]){re.escape(tok)}(?![\w])").sub(lambda _m: replacement, text)


@settings(max_examples=3000, deadline=None)
@given(TEXT, TOKEN, st.sampled_from(["", "R", "erased:x", "a_a"]))
@example("aa", "a", "R")  # overlapping occurrences, none standing whole
@example("a a", "a", "R")
@example("_a", "a", "R")  # '_' is a word character
@example("٣a", "a", "R")  # so is a non-ASCII digit
@example("-a-a-", "a", "aa")  # the replacement must not be searched again
def test_a_token_is_replaced_exactly_where_the_regular_expression_finds_it_standing(text, tok, replacement):
    assert _replace_standing(text, tok, replacement) == by_regex(text, tok, replacement)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(TOKEN, st.sampled_from(["R", "erased:x"]), max_size=3), TEXT)
def test_several_tokens_are_replaced_longest_first(replacements, text):
    expected = text
    for tok in sorted(replacements, key=lambda t: (-len(t), t)):
        expected = by_regex(expected, tok, replacements[tok])
    assert _replace_tokens(text, _ordered(replacements)) == expected


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-20, 20) | st.sampled_from([1.5, -0.0]) | st.text('1a"', max_size=3),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text("ab", max_size=2), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=2000, deadline=None)
@given(JSON_VALUES, JSON_VALUES)
@example(1, "1")  # a number and a string of the same text
@example({}, [])  # an empty object and an empty array
@example({"a": 1}, {"a": "1"})
@example([[]], [{}])
@example(True, 1)
def test_two_lines_are_the_same_json_exactly_when_their_dumps_are(a, b):
    left, right = json.dumps({"v": a}), json.dumps({"v": b})
    assert _same_json(left, _parse_object(right)) == (_dump(_parse_object(left)) == _dump(_parse_object(right)))


@pytest.mark.parametrize("user_id", ['"12345"', "12345"])
def test_the_own_line_of_an_erased_account_loses_its_names_whether_its_user_id_is_a_string_or_a_number(user_id):
    """A number is parsed as a ``_Raw``, which equals no string: the own-line test compares its text."""
    line = f'{{"userId":{user_id},"event":"Account Created","properties":{{"first_name":"Jana","last_name":"Nová"}}}}'
    redacted = redact_line(line, {"12345": "erased:k"}, {"12345"})
    assert "Jana" not in redacted and "Nová" not in redacted, redacted
    assert json.loads(redacted)["userId"] == "erased:k"
