"""client/present.py render: what came over the network cannot drive the terminal."""

from __future__ import annotations

import re
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from client.errors import BadRequest, UnknownError
from client.models import Message
from client.present import CONTINUATION, error_line, format_message, render

#: The characters issue 18 names: no rendered text may hold one.
FORBIDDEN = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u00ad\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064"
    "\u2066-\u2069\ufeff]"
)
#: The start of a message line as format_message writes it.
MESSAGE_LINE = re.compile(r"\[\d\d:\d\d:\d\d\] ")

HOSTILE = st.text(alphabet=st.one_of(
    st.sampled_from(list("\x1b\x07\r\x08\n\t\x9b\x85\u202e\u2066\u200b\ufeff\u2028[]:0 ")),
    st.characters(),
), max_size=200)


def message(body: str, sender: str = "mallory") -> Message:
    return Message(msg_id="m1", sender=sender, to="bob", body=body, ts=1_700_000_000_000,
                   seq="1-0")


@given(HOSTILE)
def test_rendered_text_holds_no_control_bidi_or_invisible_format_character(text: str) -> None:
    assert FORBIDDEN.search(render(text, multiline=True)) is None
    assert FORBIDDEN.search(render(text)) is None


@given(HOSTILE)
def test_single_line_rendering_stays_on_one_line(text: str) -> None:
    assert "\n" not in render(text)


@given(HOSTILE, HOSTILE)
def test_a_message_is_one_message_line_and_indented_continuations(body: str, name: str) -> None:
    lines = format_message(message(body, name)).split("\n")
    assert MESSAGE_LINE.match(lines[0])
    assert all(line.startswith(CONTINUATION) for line in lines[1:])
    assert all(FORBIDDEN.search(line) is None for line in lines)


@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cf", "Zl", "Zp")),
               max_size=100))
def test_ordinary_text_is_shown_as_it_is(text: str) -> None:
    assert render(text) == text


def test_escapes_show_which_character_was_there() -> None:
    assert render("\x1b[2J\x07\r\x08\x9b") == "\\x1b[2J\\x07\\x0d\\x08\\x9b"
    assert render("abc\u202edef\u2066") == "abc\\u202edef\\u2066"
    assert render("tag\U000e0041") == "tag\\U000e0041"


def test_a_fake_message_line_inside_a_body_is_indented() -> None:
    shown = format_message(message("hi\n[12:00:00] admin: send me your password"))
    assert shown.split("\n")[1] == CONTINUATION + "[12:00:00] admin: send me your password"


def test_tabs_stay_and_names_cannot_break_the_line() -> None:
    assert render("a\tb") == "a\tb"
    assert format_message(message("x", sender="ev\nil")).count("\n") == 0


def test_error_details_and_codes_are_rendered_on_one_line() -> None:
    assert error_line(BadRequest("bad\x1b]0;pwned\x07\nthing")) \
        == "error: bad_request: bad\\x1b]0;pwned\\x07 thing"
    assert error_line(UnknownError("x", code="evil\x1b[2J")) == "error: evil\\x1b[2J: x"


def test_json_lines_stay_exact_json() -> None:
    line = error_line(BadRequest("bad\x1b"), as_json=True)
    assert line == '{"error":"bad_request","detail":"bad\\u001b"}'


def test_every_named_format_character_is_a_format_or_separator_character() -> None:
    # The list of issue 18 is made of invisible characters: guard against typos.
    for code in [0xAD, 0x61C, *range(0x200B, 0x2010), *range(0x2028, 0x202F),
                 *range(0x2060, 0x2065), *range(0x2066, 0x206A), 0xFEFF]:
        assert unicodedata.category(chr(code)) in ("Cf", "Zl", "Zp"), hex(code)
        assert render(chr(code)) == (f"\\u{code:04x}" if code > 0xFF else f"\\x{code:02x}")
