"""The offline advisor's intents are one enum: each has a plan in plans.json and an answer in replies.py, and
plans.json names no other intent. Money arguments are converted by what the parameter is, never by how its
description is worded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from agent.offline.intents import Intent
from agent.offline.planner import MONEY_UNITS, coerce
from agent.offline.reading import book
from agent.offline.replies import HANDLERS, REPLY_ONLY

PLANS = Path(__file__).parents[2] / "agent" / "offline" / "plans.json"
SNAPSHOT = Path(__file__).parents[1] / "snapshots" / "tool_schemas.json"


def test_every_intent_has_a_plan_and_an_answer() -> None:
    plans = book().plans
    assert set(plans) == set(Intent), "an intent without a plan, or a plan for no intent"
    assert set(HANDLERS) == set(Intent), "an intent the replies cannot answer"
    # Reply-only intents answer from the conversation alone: their plans call no tool, and only theirs.
    assert {intent for intent in Intent if not plans[intent]} == REPLY_ONLY


def test_plans_json_names_only_known_intents() -> None:
    raw = json.loads(PLANS.read_text(encoding="utf-8"))
    known = {intent.value for intent in Intent}
    assert {rule["name"] for rule in raw["intents"]} <= known
    assert set(raw["plans"]) <= known


def test_a_money_parameter_in_minor_units_is_converted_whatever_its_description_says() -> None:
    schema = {"type": "integer", "description": "Highest price to show."}  # says nothing of cents
    assert coerce(25, schema, "max_price_minor") == 2500
    assert coerce(12.5, {"anyOf": [{"type": "integer"}, {"type": "null"}]}, "budget_cents") == 1250


def test_a_parameter_that_is_not_money_is_not_converted_though_its_description_says_cents() -> None:
    schema = {
        "type": "integer",
        "description": "How many 50-cent samples to add (minor units are not money).",
    }
    assert coerce(3, schema, "quantity") == 3
    assert coerce(40.0, {"type": "number", "description": "Budget in cents."}, "weight") == 40.0


def test_shines_money_parameters_take_major_units_and_pass_through_unchanged() -> None:
    budget = {"anyOf": [{"maximum": 100000, "type": "number"}, {"type": "null"}]}
    assert coerce(40, budget, "budget") == 40.0
    assert coerce(40, budget, "max_price") == 40.0


def _money_like(schema: dict[str, Any]) -> bool:
    options = [schema, *schema.get("anyOf", [])]
    return any(o.get("type") in ("number", "integer") for o in options if isinstance(o, dict))


def test_every_money_parameter_of_shines_tools_has_its_unit_declared() -> None:
    """A new price, budget or amount parameter is listed in the planner's table with its unit, so the
    offline advisor never guesses whether 25 means $25 or 25 cents."""
    tools = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    undeclared = {
        f"{tool}.{name}"
        for tool, shapes in tools.items()
        for name, schema in (shapes["input"].get("properties") or {}).items()
        if any(word in name for word in ("price", "budget", "amount", "cost"))
        and _money_like(schema)
        and name not in MONEY_UNITS
    }
    assert not undeclared
