"""A routine is planned by plain functions over the demo catalog, no MCP server in between: the recommender
ranks and re-reads the products, `plan_routine` chooses and schedules them, and what cannot be done is
said in words a shopper can act on."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from shine_mcp.advice.needs import Needs
from shine_mcp.advice.recommender import Recommender, main_currency
from shine_mcp.advice.routine import (
    MINIMAL,
    Plan,
    RoutineImpossible,
    candidate_groups,
    plan_routine,
    routine_warnings,
)
from shine_mcp.auth.identity import Caller
from shine_mcp.knowledge import KnowledgeBase
from shine_mcp.services import Services


@pytest.fixture
async def recommender(services: Services, kb: KnowledgeBase) -> AsyncIterator[Recommender]:
    async with services.running():
        yield Recommender(services, kb)


async def _plan_for(recommender: Recommender, needs: Needs) -> Plan:
    index = await recommender.index.get()
    needs.currency = main_currency(index)
    caller = Caller(user_id="usr_routine_plan", transport="stdio")
    prepared = await recommender.prepare(caller, needs, None, index, needs.budget_minor)
    by_group = await recommender.pick_groups(prepared, candidate_groups(MINIMAL))
    return plan_routine(recommender.kb, MINIMAL, prepared, by_group, {})


async def test_a_planned_routine_ends_every_morning_with_sunscreen(
    recommender: Recommender, kb: KnowledgeBase
) -> None:
    needs = Needs()
    needs.add("acne", "asked")
    plan = await _plan_for(recommender, needs)
    morning = [p for p in plan.schedule.steps if "am" in p.slots]
    assert morning and morning[-1].spec.key == "protect"
    assert morning[-1].product.category == "sunscreen"
    warnings = routine_warnings(kb, MINIMAL, plan, pregnant=True)
    assert any("doctor or midwife" in w for w in warnings)


async def test_a_budget_below_every_sunscreen_names_what_the_cheapest_costs(recommender: Recommender) -> None:
    needs = Needs(budget_minor=1)
    with pytest.raises(RoutineImpossible) as refused:
        await _plan_for(recommender, needs)
    assert "the cheapest sunscreen that fits your limits costs" in str(refused.value)
    assert "raise the budget" in str(refused.value)
