"""The report file check's e-mail search finds exactly what EMAIL_PATTERN finds, in linear time."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assets.reports.csvsafe import EMAIL_PATTERN, EMAIL_SEARCH


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("jana.novakova@example.cz", True),
        ("a@b", True),
        ("x,a@b,y", True),
        ("@b", False),
        ("a@", False),
        ("a @b", False),
        ("a@ b", False),
        ("a@@b", False),
        ("a\t@\tb", False),
        ("", False),
        ("no at sign here", False),
        ("ž@ř", True),
    ],
)
def test_finds_what_the_pattern_finds(text, found):
    assert bool(EMAIL_PATTERN.search(text)) is found
    assert bool(EMAIL_SEARCH.search(text)) is found


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(["a", "@", " ", "\n", "\t", ",", "ž", "."]), max_size=40))
def test_agrees_with_the_pattern_on_any_text(text):
    assert bool(EMAIL_SEARCH.search(text)) == bool(EMAIL_PATTERN.search(text))


def test_the_search_cannot_backtrack():
    # A fixed three-character pattern: no quantifier, so no backtracking over long runs without
    # '@' (EMAIL_PATTERN's `+` made its search quadratic in the length of such a run).
    assert "+" not in EMAIL_SEARCH.pattern and "*" not in EMAIL_SEARCH.pattern
    text = ",".join(["0123456789abcdef" * 4] * 2_000)  # a CSV line of keys, no whitespace
    assert EMAIL_SEARCH.search(text) is None
    assert EMAIL_SEARCH.search(text + "a@b") is not None
