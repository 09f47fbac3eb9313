"""server/wire/protocol.py: glob_to_regex and literal_prefix, with hypothesis properties."""

from __future__ import annotations

import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from server.wire.arguments import glob_to_regex, literal_prefix

# glob ---------------------------------------------------------------------------------

def matches(pattern: str, name: str) -> bool:
    return glob_to_regex(pattern).fullmatch(name) is not None


def test_star_matches_any_run_of_characters_including_none() -> None:
    assert matches("*", "")
    assert matches("*", "alice")
    assert matches("a*e", "ae")
    assert matches("a*e", "alice")
    assert not matches("a*e", "alicx")


def test_question_mark_matches_exactly_one_character() -> None:
    assert matches("b?b", "bob")
    assert not matches("b?b", "bb")
    assert not matches("b?b", "boob")
    assert matches("??", "ab")
    assert not matches("??", "a")


def test_glob_brackets_and_backslash_are_literal() -> None:
    assert matches("[ab]", "[ab]")
    assert not matches("[ab]", "a")
    assert matches("a\\*", "a\\xyz")
    assert not matches("a\\*", "a*")
    assert matches("\\?", "\\x")
    assert not matches("\\?", "?x")


@pytest.mark.parametrize(("pattern", "regex_would_match"), [
    (".", "a"), ("a.c", "abc"), ("a+", "aa"), ("(a)", "a"), ("a{2}", "aa"), ("^a$", "a"),
    ("a|b", "b"), ("[a-c]", "b"),
])
def test_regex_metacharacters_in_a_glob_are_literal(pattern: str,
                                                    regex_would_match: str) -> None:
    assert matches(pattern, pattern)
    assert not matches(pattern, regex_would_match)


@pytest.mark.timeout(10)
def test_glob_with_many_stars_cannot_backtrack_exponentially() -> None:
    # `*` -> `.*` took seconds for 12 stars and forever for 128 (one request
    # could stall the server); every name must take microseconds.
    started = time.perf_counter()
    for pattern in ("*a" * 128 + "b", "*?" * 100 + "*x", "*ab?" * 60 + "*c"):
        assert glob_to_regex(pattern).fullmatch("a" * 32) is None
        assert glob_to_regex(pattern).fullmatch("ab" * 16) is None
    assert time.perf_counter() - started < 1.0


def test_glob_matches_the_whole_name_not_a_part() -> None:
    assert not matches("li", "alice")
    assert not matches("ali", "alice")
    assert matches("*li*", "alice")


def test_wildcards_span_any_character_even_newline() -> None:
    assert matches("a*b", "a\nb")
    assert matches("a?b", "a\nb")


def test_empty_glob_matches_only_the_empty_name() -> None:
    assert matches("", "")
    assert not matches("", "a")


@pytest.mark.parametrize(("pattern", "prefix"), [
    ("abc", "abc"), ("abc*", "abc"), ("ab*c", "ab"), ("ab?c", "ab"), ("*abc", ""), ("?", ""),
    ("", ""), ("[a]*", "[a]"), ("a\\*", "a\\"), ("a.b?*", "a.b"),
])
def test_literal_prefix_is_the_text_before_the_first_wildcard(pattern: str, prefix: str) -> None:
    assert literal_prefix(pattern) == prefix


def reference_match(pattern: str, name: str) -> bool:
    """The PROTOCOL.md glob, as a plain recursive matcher."""
    if not pattern:
        return not name
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        return any(reference_match(rest, name[i:]) for i in range(len(name) + 1))
    if not name:
        return False
    return (head == "?" or head == name[0]) and reference_match(rest, name[1:])


GLOB_ALPHABET = "ab.*?[]\\-^$(|)+{}\n"
NAME_ALPHABET = "ab.*?[]\\-^$(|)+{}\n"


@settings(max_examples=300, deadline=None)
@given(pattern=st.text(GLOB_ALPHABET, max_size=8), name=st.text(NAME_ALPHABET, max_size=8))
def test_glob_agrees_with_a_reference_matcher(pattern: str, name: str) -> None:
    assert matches(pattern, name) == reference_match(pattern, name)


@settings(max_examples=200, deadline=None)
@given(pattern=st.text("ab*?", max_size=6), name=st.text("ab", max_size=8))
def test_glob_agrees_with_a_reference_matcher_on_dense_wildcards(pattern: str, name: str) -> None:
    assert matches(pattern, name) == reference_match(pattern, name)


@settings(max_examples=200, deadline=None)
@given(pattern=st.text(GLOB_ALPHABET, max_size=8), name=st.text(NAME_ALPHABET, max_size=8))
def test_every_name_a_glob_matches_starts_with_its_literal_prefix(pattern: str, name: str) -> None:
    if matches(pattern, name):
        assert name.startswith(literal_prefix(pattern))
