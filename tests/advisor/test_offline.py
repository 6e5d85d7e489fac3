"""The offline advisor (no model key): one scenario per intent, through the real Shine server in process
(catalog and skin tools) or the toy shop's stand-ins for tools other issues deliver (cart, checkout,
orders, web images). Every expectation is checked against what the tools themselves return."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from mcp.server.mcpserver import MCPServer

from agent import Attachment, OfflinePlanner
from agent.cards import product_card, products_in, short_reason
from agent.events import ToolProgress
from agent.offline.replies import CAPABILITIES
from shine_mcp.orders.service import Commerce
from shine_mcp.services import Services
from tests.advisor.conftest import Chat, chatting
from tests.advisor.toy_shop import ToyShop
from tests.models.conftest import ASTRONAUT


def calls(chat: Chat) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for message in chat.conversation.messages:
        for block in message["content"]:
            if block.get("type") == "tool_use":
                out.append((block["name"], block["input"]))
    return out


async def test_the_first_answer_introduces_the_advisor_in_a_shoppers_words(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        first = await chat.say("hello")
        second = await chat.say("hello again")

    assert "simple requests" in first.text
    assert "simple requests" not in second.text
    set_up_words = ("offline", "AI model", "configured", "tools")
    assert not [w for w in set_up_words if w in first.text]
    assert first.done.advisor == "offline advisor"  # the set-up is for the merchant's logs and /healthz


async def test_a_concern_and_a_budget_become_filters_of_the_best_tool_and_cards(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("my skin gets red and shiny, I have $40")
        registered = {t.name for t in (await chat.client.list_tools()).tools}
        ((name, arguments),) = calls(chat)
        expected = products_in((await chat.client.call_tool(name, arguments)).structured_content)

    assert set(arguments["concerns"]) == {"redness", "oiliness"}
    if "recommend_products" in registered:  # recommendations serve a concern better than a search
        assert name == "recommend_products" and "budget" in arguments
    else:
        assert name == "search_products" and arguments["max_price"] == 40.0
    cards = seen.cards("products")[0]["products"]
    assert [c["id"] for c in cards] == [p["id"] for p in expected]
    assert all(c["price"]["amount_minor"] <= 4000 for c in cards)
    assert cards[0]["name"] in seen.text


async def test_a_shoppers_phrase_keeps_its_filters_in_the_search(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("Find me a fragrance-free moisturiser for dry skin under $25")
        ((_, arguments),) = calls(chat)
        expected = (await chat.client.call_tool("search_products", arguments)).structured_content

    assert arguments["category"] == "moisturiser" and arguments["skin_type"] == "dry"
    assert arguments["max_price"] == 25.0 and "fragrance-free" in arguments["query"]
    assert [c["id"] for c in seen.cards("products")[0]["products"]] == [p["id"] for p in expected["products"]]


async def test_nothing_matching_is_said_plainly(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("find a sunscreen under $1")

    assert seen.cards("products") == []
    assert "Nothing in the catalog matches" in seen.text


async def test_what_is_in_the_first_one_reads_the_first_product_shown(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        found = await chat.say("show me serums")
        first = found.cards("products")[0]["products"][0]
        seen = await chat.say("what's in the first one?")
        detail = (await chat.client.call_tool("get_product", {"product_id": first["id"]})).structured_content

    assert calls(chat)[-1] == ("get_product", {"product_id": first["id"]})
    assert detail["ingredients"][0] in seen.text
    assert seen.cards("product")[0]["id"] == first["id"]


async def test_a_product_named_by_brand_and_name_is_found_then_read(toy_server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), toy_server) as chat:
        seen = await chat.say("tell me about the Testbrand Toy Serum")

    assert [name for name, _ in calls(chat)] == ["search_products", "get_product"]
    assert calls(chat)[-1][1] == {"product_id": "prd_toy_serum"}
    assert "Niacinamide" in seen.text


async def test_help_lists_what_this_shop_can_and_cannot_do_yet(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("help")
        registered = {t.name for t in (await chat.client.list_tools()).tools}

    can, _, cannot = seen.text.partition("Not available in this shop yet")
    for tool, phrase in CAPABILITIES:
        assert (phrase in can) == (tool in registered), phrase
        assert (phrase in cannot) == (tool not in registered), phrase


@pytest.mark.parametrize(
    "message",
    [
        "please delete my data",
        "close my account",
        "what data do you keep about me?",
        "can I download my chats",
    ],
)
async def test_data_requests_point_to_the_your_data_button_and_call_no_tool(
    server: MCPServer, message: str
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say(message)

    assert calls(chat) == []
    assert "“Your data” button" in seen.text


async def test_removing_a_cart_item_is_not_read_as_a_data_request(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("remove it from my cart")

    assert "Your data" not in seen.text


async def test_a_photo_is_analysed_into_a_report_and_products(server: MCPServer) -> None:
    photo = "data:image/png;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()

    async def attachment(upload_id: str) -> str | None:
        return photo if upload_id == "att_selfie01" else None

    async with chatting(OfflinePlanner(), server, attachments=attachment) as chat:
        seen = await chat.say("here's my selfie, what do you think? I have $40", attachments=["att_selfie01"])
        reports = (await chat.client.call_tool("list_skin_reports", {})).structured_content

    name, arguments = calls(chat)[0]
    assert name == "analyze_skin" and arguments["image"] == "att_selfie01"  # the id, never the bytes
    (report,) = seen.cards("report")
    assert report["id"] == reports["reports"][0]["report_id"]
    assert report["id"] in seen.text and "not a medical assessment" in seen.text
    follow_up = calls(chat)[1:]
    assert follow_up and follow_up[-1][0] in ("build_routine", "recommend_products", "search_products")
    assert seen.cards("products") or seen.cards("routine")
    progress = [e.message for e in seen.events if isinstance(e, ToolProgress) and e.name == "analyze_skin"]
    assert progress and progress[0]  # the analysis reports its stages while it works


async def test_asking_for_an_analysis_without_a_photo_asks_for_one(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("can you analyse my skin?")

    assert calls(chat) == []
    assert "Attach a clear, front-facing photo" in seen.text


async def test_intents_whose_tools_are_missing_say_so(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        registered = {t.name for t in (await chat.client.list_tools()).tools}
        replies = {
            "browse_web_images": await chat.say("show me pictures of glass skin"),
            "add_to_cart": await chat.say("add prd_123 to my cart"),
            "get_order": await chat.say("where is my order ord_abc123?"),
        }

    for tool, seen in replies.items():
        if tool not in registered:
            assert "in this shop yet" in seen.text and seen.started() == [], tool


async def test_a_red_flag_gets_the_dermatologist_answer_offline_too(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("my mole is getting bigger and darker, which serum?")

    assert "dermatologist" in seen.text and calls(chat) == []


# --- the real cart, checkout and orders -------------------------------------------------------------------
async def test_a_real_cart_is_confirmed_checked_out_paid_and_tracked(
    server: MCPServer, services: Services
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        found = await chat.say("show me cleansers under $20")
        first = found.cards("products")[0]["products"][0]
        added = await chat.say("add 2 of the first one to my cart")
        cart = (await chat.client.call_tool("view_cart", {})).structured_content
        confirmed = await chat.say("yes, check out")
        link = confirmed.cards("checkout")[0]["url"]
        # What the simulated page's Pay button does: a signed event through the webhook handler.
        assert (await Commerce(services).gateway().pay(link.rsplit("/", 1)[1])).paid
        tracked = await chat.say("where is my order?")

    assert ("add_to_cart", {"product_id": first["id"], "quantity": 2}) in calls(chat)
    shown = added.cards("cart")[0]
    assert [(i["product_id"], i["quantity"]) for i in shown["items"]] == [(first["id"], 2)]
    assert (
        shown["total"]["amount_minor"]
        == cart["subtotal"]["amount_minor"]
        == 2 * first["price"]["amount_minor"]
    )
    assert "Shall I check out" in added.text
    assert "/simulated-checkout/" in link and "simulated" in confirmed.text
    assert "paid" in tracked.text.lower() or "being prepared" in tracked.text


async def test_a_changed_cart_is_shown_again_before_checking_out(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("show me cleansers under $20")
        await chat.say("add the first one to my cart")
        # The shopper changes the cart elsewhere (another tab) after seeing it here.
        cart = (await chat.client.call_tool("view_cart", {})).structured_content
        product_id = cart["lines"][0]["product_id"]
        await chat.client.call_tool("update_cart_item", {"product_id": product_id, "quantity": 3})
        seen = await chat.say("Check out my cart.", confirm_checkout=True)

    assert "checkout" not in [name for name, _ in calls(chat)]
    assert seen.cards("cart")[0]["count"] == 3 and "checkout_needs_confirmation" in seen.notices()


async def test_a_safety_question_checks_the_product_for_the_shopper_s_situation(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        found = await chat.say("show me retinol serums")
        first = found.cards("products")[0]["products"][0]
        seen = await chat.say("is the first one safe for me? I am pregnant")

    name, arguments = calls(chat)[-1]
    assert name == "check_ingredients"
    assert arguments["product_ids"][0] == first["id"] and arguments["pregnant_or_nursing"] is True
    assert "pregnant" in seen.text.lower().split("here's what i found")[1]


async def test_can_i_use_one_product_with_another_checks_both(server: MCPServer) -> None:
    retinol, glycolic = "prd_706be553cc36", "prd_9c5532d6cfd5"
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say(f"can I use {retinol} with {glycolic}?")

    assert ("check_ingredients", {"product_ids": [retinol, glycolic]}) in calls(chat)
    assert "different nights" in seen.text


# --- the toy shop: cart, checkout, orders and web images as the other issues specify them ----------------
async def test_add_to_cart_then_yes_checks_out(toy_server: MCPServer, toy: ToyShop) -> None:
    async with chatting(OfflinePlanner(), toy_server) as chat:
        added = await chat.say("add the toy cream to my cart")
        confirmed = await chat.say("yes, check out")

    # the loop re-reads the cart before checking out, in case it changed since the shopper saw it
    assert toy.names() == ["search_products", "add_to_cart", "view_cart", "checkout"]
    assert toy.calls[1][1] == {"product_id": "prd_toy_cream", "quantity": 1}
    assert "Shall I check out?" in added.text and added.cards("cart")[0]["total"]["display"] == "$18.50"
    assert confirmed.cards("checkout")[0]["url"].endswith("/simulated-checkout/ord_toy1")
    assert "simulated" in confirmed.text


async def test_checkout_first_shows_the_cart_and_asks(toy_server: MCPServer, toy: ToyShop) -> None:
    toy.cart["prd_toy_serum"] = 2
    async with chatting(OfflinePlanner(), toy_server) as chat:
        seen = await chat.say("check out")

    assert toy.names() == ["view_cart"]
    assert "Shall I check out 2 items for $48.00?" in seen.text


async def test_saying_no_to_the_cart_does_not_check_out(toy_server: MCPServer, toy: ToyShop) -> None:
    toy.cart["prd_toy_serum"] = 1
    async with chatting(OfflinePlanner(), toy_server) as chat:
        await chat.say("checkout")
        seen = await chat.say("no, not yet")

    assert "checkout" not in toy.names()
    assert "I won't check out" in seen.text


async def test_add_two_of_the_first_product_shown(toy_server: MCPServer, toy: ToyShop) -> None:
    async with chatting(OfflinePlanner(), toy_server) as chat:
        await chat.say("find toy products")
        await chat.say("add 2 of the first one to my cart")

    assert toy.calls[-1] == ("add_to_cart", {"product_id": "prd_toy_cream", "quantity": 2})
    assert toy.cart == {"prd_toy_cream": 2}


async def test_the_checkout_button_checks_out_a_cart_the_shopper_has_seen(
    toy_server: MCPServer, toy: ToyShop
) -> None:
    async with chatting(OfflinePlanner(), toy_server) as chat:
        await chat.say("add prd_toy_serum to my cart")
        seen = await chat.say("Check out my cart.", confirm_checkout=True)

    assert toy.names()[-1] == "checkout"
    assert seen.done.stop_reason == "checkout" and seen.cards("checkout")


async def test_the_checkout_button_before_seeing_the_cart_shows_it_instead(
    toy_server: MCPServer, toy: ToyShop
) -> None:
    toy.cart["prd_toy_cream"] = 1
    async with chatting(OfflinePlanner(), toy_server) as chat:
        seen = await chat.say("Check out my cart.", confirm_checkout=True)

    assert "checkout" not in toy.names()
    assert seen.cards("cart") and "checkout_needs_confirmation" in seen.notices()


async def test_where_is_my_order(toy_server: MCPServer, toy: ToyShop) -> None:
    async with chatting(OfflinePlanner(), toy_server) as chat:
        one = await chat.say("where is my order ord_toy1?")
        every = await chat.say("show my orders")

    assert toy.calls[0] == ("get_order", {"order_id": "ord_toy1"})
    assert toy.names()[-1] == "list_orders"
    assert "Order ord_toy1: paid, $18.50" in one.text and "ord_toy1" in every.text


async def test_images_come_from_the_web_tool_with_their_sources(toy_server: MCPServer, toy: ToyShop) -> None:
    async with chatting(OfflinePlanner(), toy_server) as chat:
        seen = await chat.say("show me pictures of dewy skin")

    assert toy.calls == [("browse_web_images", {"query": "dewy skin"})]
    assert seen.cards("images")[0]["images"][0]["source"] == "blog.example.com"
    assert "1 images from the web" in seen.text or "Here are 1 images" in seen.text


async def test_a_routine_without_the_routine_builder_is_a_simple_one_from_searches(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        registered = {t.name for t in (await chat.client.list_tools()).tools}
        seen = await chat.say("build me a routine for oily skin")

    if "build_routine" in registered:
        assert calls(chat)[0][0] == "build_routine"
        return
    categories = [arguments.get("category") for _, arguments in calls(chat)]
    assert categories == ["cleanser", "moisturiser", "sunscreen"]
    assert "simple starting routine" in seen.text and "sunscreen every morning" in seen.text


async def test_two_analyses_can_be_compared(server: MCPServer) -> None:
    photo = "data:image/png;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()

    async def attachment(upload_id: str) -> str | None:
        return photo

    async with chatting(OfflinePlanner(), server, attachments=attachment) as chat:
        first = await chat.say("analyse this", attachments=["att_before01"])
        second = await chat.say(
            "and this one, a month later", attachments=[Attachment("att_after001", keep=True)]
        )
        seen = await chat.say("compare my reports")

    before, after = first.cards("report")[0]["id"], second.cards("report")[0]["id"]
    assert ("analyze_skin", {"image": "att_after001", "keep_photo": True}) in calls(chat)
    assert calls(chat)[-1] == ("compare_skin_reports", {"before_id": before, "after_id": after})
    assert seen.finished()[-1].ok
    assert "What changed between your two reports" in seen.text and "redness:" in seen.text


async def test_a_product_named_in_the_question_is_looked_up_in_the_real_catalog(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        page = (
            await chat.client.call_tool("search_products", {"query": "", "category": "cleanser", "limit": 1})
        ).structured_content
        wanted = page["products"][0]
        seen = await chat.say(f"what's in the {wanted['brand']} {wanted['name']}?")
        (search, read) = calls(chat)
        top = (await chat.client.call_tool(*search)).structured_content["products"][0]

    assert search[0] == "search_products" and read == ("get_product", {"product_id": top["id"]})
    assert top["id"] == wanted["id"]  # the catalog ranks the named product first
    assert wanted["name"] in seen.text and "Ingredients:" in seen.text


async def test_my_reports_are_listed_and_the_last_one_shown_again(server: MCPServer) -> None:
    photo = "data:image/png;base64," + base64.b64encode(ASTRONAUT.read_bytes()).decode()

    async def attachment(upload_id: str) -> str | None:
        return photo

    async with chatting(OfflinePlanner(), server, attachments=attachment) as chat:
        none_yet = await chat.say("show my skin reports")
        analysed = await chat.say("analyse this", attachments=["att_selfie01"])
        listed = await chat.say("show my skin reports")
        again = await chat.say("show me my last report again")

    report_id = analysed.cards("report")[0]["id"]
    assert "no skin reports yet" in none_yet.text
    assert report_id in listed.text and calls(chat)[-2] == ("list_skin_reports", {"limit": 10})
    assert calls(chat)[-1] == ("get_skin_report", {"report_id": report_id})
    assert again.cards("report")[0]["id"] == report_id


async def test_a_pasted_list_is_checked_itself_and_a_follow_up_keeps_it(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say(
            "a serum for redness"
        )  # products on screen: the list below is still what is asked about
        checked = await chat.say("is this safe: Aqua, Retinol, Glycolic Acid, Parfum")
        follow_up = await chat.say("I'm pregnant, can I use it?")

    (first, second) = [c for c in calls(chat) if c[0] == "check_ingredients"]
    assert first[1] == {"ingredients_text": "Aqua, Retinol, Glycolic Acid, Parfum"}
    assert "search_products" not in [name for name, _ in calls(chat)]
    assert "Retinol and Glycolic Acid" in checked.text
    assert second[1] == {
        "ingredients_text": "Aqua, Retinol, Glycolic Acid, Parfum",
        "pregnant_or_nursing": True,
    }
    assert "pregnant" in follow_up.text.lower()


async def test_a_routine_uses_what_the_shopper_said_earlier_and_says_what_the_budget_left_out(
    server: MCPServer,
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("I have oily skin with acne, budget $35, what should I use?")
        seen = await chat.say("build me a routine")

    name, arguments = calls(chat)[-1]
    assert name == "build_routine"
    assert arguments["skin_type"] == "oily" and "acne" in arguments["concerns"]
    assert arguments["budget"] == 35
    assert seen.cards("routine")
    assert "(budget $35.00)" in seen.text
    # The cheapest complete acne routine of the demo catalog costs $36.86: at $35 one step must go, and
    # the treatment (the point of an acne routine) ranks with sunscreen, so the cleanser goes.
    assert "Treat:" in seen.text
    assert "Left out to stay within $35.00: Cleanse." in seen.text


async def test_is_it_safe_after_a_routine_checks_every_product_of_the_routine(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("build me a routine for dry skin")
        routine_call = calls(chat)[-1]
        seen = await chat.say("is it safe if I'm pregnant?")

    assert routine_call[0] == "build_routine"
    name, arguments = calls(chat)[-1]
    assert name == "check_ingredients" and arguments["pregnant_or_nursing"] is True
    assert len(arguments["product_ids"]) >= 3
    assert "Pregnancy:" in seen.text or "pregnan" in seen.text.lower()


async def test_is_it_safe_with_nothing_to_check_asks_which_product_instead_of_failing(
    server: MCPServer,
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("is it safe?")

    assert [name for name, _ in calls(chat)] == []
    assert "Which product" in seen.text and "couldn't" not in seen.text


async def test_an_allergy_said_once_holds_for_the_whole_chat(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        noted = await chat.say("I'm allergic to lanolin")
        await chat.say("I have dry skin, recommend a moisturiser")
        await chat.say("find a rich cream")
        await chat.say("build me a routine")

    assert "Noted: I'll leave out lanolin" in noted.text
    made = calls(chat)
    assert [name for name, _ in made] == ["recommend_products", "search_products", "build_routine"]
    assert made[0][1]["avoid_ingredients"] == ["lanolin"]
    assert made[1][1]["exclude_ingredients"] == ["lanolin"] and "lanolin" not in made[1][1].get("query", "")
    assert made[2][1]["avoid_ingredients"] == ["lanolin"]


async def test_can_i_use_it_with_an_ingredient_checks_the_product_just_opened(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        await chat.say("fragrance-free moisturiser under $25 for dry skin")
        opened = await chat.say("what's in the second one?")
        seen = await chat.say("can I use it with retinol?")

    product_id = opened.cards("product")[0]["id"]
    name, arguments = calls(chat)[-1]
    assert name == "check_ingredients"
    assert arguments["product_ids"] == [product_id] and arguments["ingredients_text"] == "retinol"
    assert "Pixi" not in seen.text


async def test_two_products_are_compared_side_by_side(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        listed = await chat.say("fragrance-free moisturiser under $25 for dry skin")
        opened = await chat.say("what's in the second one?")
        seen = await chat.say("compare it with the first one")
        both = await chat.say("compare the first and the third")

    shown = listed.cards("products")[0]["products"]
    assert [name for name, _ in calls(chat)[-4:]] == ["get_product"] * 4
    assert {a["product_id"] for _, a in calls(chat)[-4:-2]} == {
        opened.cards("product")[0]["id"],
        shown[0]["id"],
    }
    assert {a["product_id"] for _, a in calls(chat)[-2:]} == {shown[0]["id"], shown[2]["id"]}
    assert seen.text.startswith("Side by side:") and shown[0]["name"] in seen.text
    assert "Side by side:" in both.text


async def test_can_i_use_them_together_after_a_comparison_checks_the_compared_two(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        listed = await chat.say("fragrance-free moisturiser under $25 for dry skin")
        await chat.say("compare the first and the third")
        seen = await chat.say("can I use them together?")

    shown = listed.cards("products")[0]["products"]
    name, arguments = calls(chat)[-1]
    assert name == "check_ingredients" and set(arguments["product_ids"]) == {shown[0]["id"], shown[2]["id"]}
    assert "the 2 products" in seen.text


async def test_compare_with_nothing_on_screen_asks_which(server: MCPServer) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        seen = await chat.say("which is better?")

    assert calls(chat) == [] and "Which products should I compare?" in seen.text


@pytest.mark.parametrize(
    ("why", "short"),
    [
        (
            "contains Benzoyl Peroxide, which targets acne: kills acne bacteria; first-line (strong evidence) "
            "[Zaenglein AL, Pathy AL, et al. Guidelines of care. J Am Acad Dermatol 74(5):945-973]",
            "contains Benzoyl Peroxide, which targets acne (strong evidence) [Zaenglein et al.]",
        ),
        (
            "contains Niacinamide, which targets redness (your skin report: cheeks 2.9 a* redder): reduced "
            "blotchiness (moderate evidence) [Bissett DL, Oblong JE. Niacinamide]",
            "contains Niacinamide, which targets redness (your skin report: cheeks 2.9 a* redder) "
            "(moderate evidence) [Bissett et al.]",
        ),
        (
            "contains Salicylic Acid, which targets acne: an OTC acne drug (strong evidence) "
            "[21 CFR Part 333 Subpart D: Topical acne drug products]",
            "contains Salicylic Acid, which targets acne (strong evidence) [21 CFR Part 333 Subpart D]",
        ),
        (
            "contains Alpha-Arbutin, which targets dark spots: inhibits tyrosinase (moderate evidence) "
            "[Boo YC. Arbutin as a Skin Depigmenting Agent. Antioxidants (Basel) 10(7):1129]",
            "contains Alpha-Arbutin, which targets dark spots (moderate evidence) [Boo]",
        ),
        ("suited to dry skin", "suited to dry skin"),
    ],
)
def test_a_reason_in_a_chat_line_keeps_the_claim_the_evidence_and_a_short_reference(
    why: str, short: str
) -> None:
    assert short_reason(why) == short


async def test_save_it_keeps_what_the_shopper_said_in_their_profile_without_dropping_what_was_there(
    server: MCPServer,
) -> None:
    async with chatting(OfflinePlanner(), server) as chat:
        nothing = await chat.say("save it to my profile")
        await chat.client.call_tool("update_profile", {"avoid_ingredients": ["shea butter"]})  # already held
        await chat.say("I have oily skin with acne")
        await chat.say("I'm allergic to lanolin")
        saved = await chat.say("please remember that")
        profile = await chat.client.call_tool("get_profile", {})

    assert "Tell me your skin type" in nothing.text
    assert calls(chat)[-1][0] == "update_profile"
    held = profile.structured_content
    assert held is not None and held["skin_type"] == "oily" and "acne" in held["concerns"]
    assert held["avoid_ingredients"] == ["shea butter", "lanolin"]
    assert "Saved to your profile: skin type oily" in saved.text and "avoid" in saved.text


def test_a_product_card_links_the_evidence_behind_its_reasons() -> None:
    recommendation = {
        "product": {"id": "prd_abc", "name": "Serum", "brand": "B", "price": {"display": "$10.00"}},
        "reasons": [
            {"text": "contains Niacinamide, which targets redness: calms (moderate evidence)", "kind": "concern",
             "source": "Bissett DL, Oblong JE. Niacinamide", "source_url": "https://doi.org/10.1/x"},
            {"text": "suited to dry skin", "kind": "skin_type", "source": "", "source_url": ""},
            {"text": "an old claim", "kind": "concern", "source": "Someone A. Old", "source_url": "javascript:alert(1)"},
        ],
    }  # fmt: skip
    card = product_card(recommendation)
    assert card is not None
    assert card["sources"] == [{"name": "Bissett et al.", "url": "https://doi.org/10.1/x"}]
    assert (
        card["why"][0] == "contains Niacinamide, which targets redness (moderate evidence) [Bissett et al.]"
    )
