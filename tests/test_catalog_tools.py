"""The catalog tools as an MCP client sees them: in-process, real database, demo catalog."""

from __future__ import annotations

from typing import Any

import anyio
import pytest
from mcp import Client

from shine_mcp.knowledge import load_knowledge
from shine_mcp.services import Services
from shine_mcp.store.catalog import demo_catalog_records, upsert_products
from shine_mcp.tools.catalog import CatalogFact


async def call(client: Client, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


async def call_error(client: Client, tool: str, **arguments: Any) -> str:
    result = await client.call_tool(tool, arguments)
    assert result.is_error, result.structured_content
    text = " ".join(getattr(block, "text", "") for block in result.content)
    assert text.strip() != f"Error executing tool {tool}", "a crash, not an anticipated ToolError"
    return text


def fragrance_names() -> set[str]:
    return {name.lower() for name in load_knowledge().family_members("fragrance")}


async def test_shopper_phrase_finds_fragrance_free_moisturisers_for_dry_skin_under_25(client: Client) -> None:
    page = await call(client, "search_products", query="a fragrance-free moisturiser under $25 for dry skin")

    assert page["total"] >= 3
    fragrance = fragrance_names()
    for product in page["products"]:
        assert product["category"] == "moisturiser"
        assert product["price"]["amount_minor"] <= 2500
        assert "dry" in product["skin_types"]
        detail = await call(client, "get_product", product_id=product["id"])
        assert not fragrance & {i.lower() for i in detail["ingredients"]}, detail["name"]
        assert product["matched"], "every result says why it matched"
    assert any("fragrance" in note for note in page["interpreted"])
    assert "indicative" in page["notice"]


async def test_the_same_search_with_explicit_filters_agrees(client: Client) -> None:
    phrase = await call(
        client, "search_products", query="fragrance-free moisturiser under $25 for dry skin", limit=50
    )
    explicit = await call(
        client,
        "search_products",
        category="moisturiser",
        skin_type="dry",
        max_price=25,
        exclude_ingredients=["fragrance"],
        limit=50,
    )
    assert {p["id"] for p in phrase["products"]} == {p["id"] for p in explicit["products"]}


async def test_ingredient_search_ranks_products_containing_it_first(client: Client) -> None:
    page = await call(client, "search_products", query="niacinamide", limit=5)
    assert page["total"] > 5
    for product in page["products"]:
        detail = await call(client, "get_product", product_id=product["id"])
        assert "Niacinamide" in detail["ingredients"]
        assert any("niacinamide" in reason for reason in product["matched"])


async def test_excluding_retinol_leaves_out_every_retinoid(client: Client) -> None:
    retinoids = {name.lower() for name in load_knowledge().family_members("retinoid")}
    page = await call(client, "search_products", query="serum", exclude_ingredients=["retinol"], limit=50)
    assert page["products"]
    for product in page["products"]:
        detail = await call(client, "get_product", product_id=product["id"])
        assert not retinoids & {i.lower() for i in detail["ingredients"]}, detail["name"]


async def test_unknown_ingredient_words_are_excluded_by_their_text(client: Client) -> None:
    with_shea = await call(client, "search_products", query="shea", limit=50)
    assert with_shea["total"] > 0
    without = await call(client, "search_products", query="shea", exclude_ingredients=["shea"], limit=50)
    assert without["total"] < with_shea["total"]
    for product in without["products"]:
        detail = await call(client, "get_product", product_id=product["id"])
        assert "shea" not in detail["ingredients_text"].lower()


async def test_excluding_a_known_ingredient_also_leaves_out_its_derivatives(client: Client) -> None:
    """An allergy to lanolin covers 'Lanolin Alcohol (Eucerit)', which the knowledge base does not list."""
    with_lanolin = await call(client, "search_products", query="lanolin", limit=50)
    derivatives = [
        p for p in with_lanolin["products"] if "'lanolin' in ingredients" in " ".join(p["matched"])
    ]
    assert derivatives  # the demo catalog has lanolin alcohol in creams
    for exclude in (["lanolin"], ["Lanolin"]):
        page = await call(client, "search_products", query="cream", exclude_ingredients=exclude, limit=50)
        assert page["products"]
        for product in page["products"]:
            detail = await call(client, "get_product", product_id=product["id"])
            assert "lanolin" not in detail["ingredients_text"].lower(), detail["name"]
    recommended = await call(
        client,
        "recommend_products",
        skin_type="dry",
        category="moisturiser",
        avoid_ingredients=["lanolin"],
        limit=20,
    )
    assert "lanolin" in recommended["used"]["avoid"] and recommended["products"]
    for item in recommended["products"]:
        detail = await call(client, "get_product", product_id=item["product"]["id"])
        assert "lanolin" not in detail["ingredients_text"].lower(), detail["name"]
    checked = await call(
        client,
        "check_ingredients",
        ingredients_text="Water, Petrolatum, Lanolin Alcohol",
        avoid_ingredients=["lanolin"],
    )
    assert [a["ingredient"] for a in checked["avoided"]] == ["Lanolin Alcohol"]


async def test_concerns_rank_products_that_target_them_first(client: Client) -> None:
    page = await call(client, "search_products", concerns=["redness"], limit=5)
    assert all("redness" in p["concerns"] for p in page["products"])


async def test_in_stock_only_hides_sold_out_products(client: Client) -> None:
    everything = await call(client, "search_products", limit=50)
    in_stock = await call(client, "search_products", in_stock_only=True, limit=50)
    assert in_stock["total"] < everything["total"]
    assert all(p["in_stock"] for p in in_stock["products"])


async def test_pages_follow_each_other_without_overlap(client: Client) -> None:
    first = await call(client, "search_products", query="cream", limit=7)
    assert first["next_cursor"]
    seen = [p["id"] for p in first["products"]]
    cursor = first["next_cursor"]
    while cursor:
        page = await call(client, "search_products", query="cream", limit=7, cursor=cursor)
        seen += [p["id"] for p in page["products"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == first["total"]


async def test_a_cursor_from_another_search_is_refused(client: Client) -> None:
    first = await call(client, "search_products", query="cream", limit=2)
    message = await call_error(client, "search_products", query="serum", limit=2, cursor=first["next_cursor"])
    assert "different search" in message


async def test_a_made_up_cursor_is_refused(client: Client) -> None:
    message = await call_error(client, "search_products", query="cream", cursor="not-a-cursor")
    assert "cursor" in message


@pytest.mark.parametrize(
    "query",
    [
        "retinol OR",
        '"',
        "*",
        "NEAR(",
        "😀",
        "AND",
        "(((",
        "'; DROP TABLE products; --",
        "brand:cerave",
        "^",
        "acid -",
        "NOT",
        '"unbalanced',
        "\x00",
        "x" * 500,
    ],
)
async def test_hostile_query_strings_are_just_words(client: Client, query: str) -> None:
    page = await call(client, "search_products", query=query)
    assert page["total"] >= 0


async def test_get_product_returns_the_full_inci_list(client: Client) -> None:
    page = await call(client, "search_products", query="moisturising cream", limit=1)
    detail = await call(client, "get_product", product_id=page["products"][0]["id"])
    assert len(detail["ingredients"]) >= 5
    assert detail["ingredients_text"].count(",") >= 4
    assert detail["price"]["display"].startswith("$")


async def test_unknown_product_id_is_an_actionable_error(client: Client) -> None:
    message = await call_error(client, "get_product", product_id="prd_nope")
    assert "prd_nope" in message and "search_products" in message


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"max_price": -5}, "max_price"),
        ({"limit": 0}, "limit"),
        ({"limit": 10_000}, "limit"),
        ({"category": "shampoo"}, "category"),
        ({"concerns": ["wrinkles"]}, "concerns"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_bad_arguments_are_refused_naming_the_field(
    client: Client, arguments: dict[str, Any], field: str
) -> None:
    message = await call_error(client, "search_products", **arguments)
    assert field in message


async def test_product_resource_reads_like_get_product(client: Client) -> None:
    page = await call(client, "search_products", query="sunscreen", limit=1)
    product_id = page["products"][0]["id"]
    result = await client.read_resource(f"shine://products/{product_id}")
    text = result.contents[0].text  # type: ignore[union-attr]
    assert product_id in text and "ingredients" in text


async def test_unknown_product_resource_is_not_found(client: Client) -> None:
    from mcp import MCPError

    with pytest.raises(MCPError):
        await client.read_resource("shine://products/prd_missing")


async def test_categories_resource_counts_every_category(client: Client) -> None:
    import json

    result = await client.read_resource("shine://catalog/categories")
    body = json.loads(result.contents[0].text)  # type: ignore[union-attr]
    assert len(body["categories"]) == 9
    assert all(c["products"] >= 18 for c in body["categories"])
    assert sum(c["products"] for c in body["categories"]) == body["total_products"]


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        ({"max_price": -3}, "`max_price` should be greater than 0 (got -3)."),
        (
            {"skin_type": "oilly"},
            "`skin_type` should be 'normal', 'dry', 'oily', 'combination' or 'sensitive' (got 'oilly'); did you mean 'oily'?",
        ),
        ({"limit": 10_000}, "`limit` should be less than or equal to 50 (got 10000)."),
        ({"concerns": ["acne", "wrinkles"]}, "`concerns[1]` should be 'acne'"),
        ({"query": 42}, "`query` should be a valid string (got 42)."),
    ],
)
async def test_wrong_arguments_say_which_what_and_what_was_sent(
    client: Client, arguments: dict[str, Any], expected: str
) -> None:
    message = await call_error(client, "search_products", **arguments)
    assert expected in message
    assert "pydantic" not in message and "Arguments" not in message and message.endswith("call again.")


class _Reads:
    """A catalog fact's reading function that counts its reads and can be held back."""

    def __init__(self) -> None:
        self.count = 0
        self.started = anyio.Event()  # a held read began
        self.release = anyio.Event()
        self.held = False

    async def __call__(self, _db: object) -> int:
        self.count += 1
        if self.held:
            self.started.set()
            await self.release.wait()
        return self.count


async def test_a_catalog_fact_is_read_again_at_once_after_this_process_changes_the_catalog(
    services: Services,
) -> None:
    reads = _Reads()
    fact: CatalogFact[int] = CatalogFact(reads, services, ttl=3600)
    async with services.running():
        assert await fact.get() == 1
        assert await fact.get() == 1  # still fresh: not read again
        _notice, demo = demo_catalog_records()
        await upsert_products(services.db, [demo[0]], source="test")  # an import here, e.g. a new brand

        assert await fact.get() == 2


async def test_a_stale_catalog_fact_is_served_while_it_is_read_again(services: Services) -> None:
    """A search waiting for 50 000 products' brands to be re-read once a minute took ~100 ms more."""
    reads = _Reads()
    fact: CatalogFact[int] = CatalogFact(reads, services, ttl=0.0)
    async with services.running():
        assert await fact.get() == 1
        reads.held = True
        try:
            with anyio.fail_after(5):
                assert await fact.get() == 1  # stale: served as it is, the new read under way
                await reads.started.wait()
                assert await fact.get() == 1
                assert reads.count == 2  # one read at a time
        finally:
            reads.release.set()
        with anyio.fail_after(5):
            await fact.settled()
        assert await fact.get() == 2
