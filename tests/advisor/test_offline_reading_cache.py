"""The offline advisor reads each earlier message of a chat once, not once per reply, and parses a tool result
only when it looks at it: a reply's cost no longer grows with the chat's length. The kept readings are
shared, so nothing handed out of them may be changed."""

from __future__ import annotations

import dataclasses
import json

from agent.offline.context import read_history
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


def test_a_long_chats_tool_results_are_parsed_only_when_looked_at() -> None:
    messages: list[dict[str, object]] = []
    for n in range(30):
        messages.append({"role": "user", "content": f"show me serums {n}"})
        call = {"type": "tool_use", "id": f"call_{n}", "name": "search_products", "input": {"query": "serum"}}
        messages.append({"role": "assistant", "content": [call]})
        result = {"type": "tool_result", "tool_use_id": f"call_{n}", "content": json.dumps({"page": n})}
        messages.append({"role": "user", "content": [result]})

    context = read_history(messages)  # type: ignore[arg-type]
    calls = [seen for turn in context.turns for seen in turn.calls]

    assert len(calls) == 30 and all("_parsed" not in vars(seen) for seen in calls)
    assert calls[-1].structured == {"page": 29} and calls[-1].ok
    assert [seen for seen in calls if "_parsed" in vars(seen)] == [calls[-1]]
