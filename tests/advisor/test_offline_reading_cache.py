"""The offline advisor reads each earlier message of a chat once, not once per reply: a reply's cost no longer
grows with the chat's length. The kept readings are shared, so nothing handed out of them may be changed."""

from __future__ import annotations

import dataclasses

from agent.offline.reading import read, read_earlier


def test_an_earlier_message_is_read_once_and_reads_as_a_fresh_reading() -> None:
    message = "oily skin with acne, fragrance-free serum under $40, I'm allergic to lanolin"

    first, again = read_earlier(message), read_earlier(message)

    assert first is again
    assert dataclasses.asdict(first) == dataclasses.asdict(read(message))
    assert "acne" in first.concerns and first.skin_type == "oily" and first.budget == 40.0
    assert first.avoid == ["lanolin"]


def test_every_vocabulary_phrase_is_matched_as_a_whole_word() -> None:
    assert read("something for acne").concerns == ["acne"]
    assert read("something for acnemia").concerns == []  # not inside a longer word
