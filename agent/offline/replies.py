"""The offline advisor's answers, written from this turn's tool results (never from memory)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent.cards import MAX_CARDS, cart_card, products_in
from agent.model import ToolSpec
from agent.offline.context import Context, Seen
from agent.offline.intents import Intent
from agent.offline.naming import label
from agent.offline.reading import ONE_LESS, Reading
from agent.offline.texts import (
    basic_routine,
    cart_text,
    check_text,
    comparison_text,
    detail_text,
    for_shopper,
    money,
    order_line,
    products_compared_text,
    profile_saved_text,
    profile_text,
    refill_offer,
    report_text,
    routine_text,
    strings,
    top_pick,
)
from agent.policy import Policy

if TYPE_CHECKING:
    from agent.offline.planner import Slots

# Shopper-facing: what changes what they can do (short requests work best), never how the shop is set up.
INTRO = "I'm Shine, this shop's skincare advisor. I understand short, simple requests best."
EXAMPLES = "“find a fragrance-free moisturiser under $25”, “what's in the first one?”"
CAPABILITIES: list[tuple[str, str]] = [
    ("search_products", "find products by concern, skin type, ingredient or budget"),
    ("get_product", "show what's in a product, or compare two side by side"),
    ("analyze_skin", "analyse a selfie (attach a photo)"),
    ("list_skin_reports", "show and compare your skin reports"),
    ("recommend_products", "recommend products for your skin"),
    ("build_routine", "build a morning and evening routine"),
    ("check_ingredients", "check products for clashing ingredients"),
    (
        "update_profile",
        "remember your skin type, concerns and allergies (say “save it”; “show my profile” shows them)",
    ),
    ("browse_web_images", "find images on the web"),
    ("add_to_cart", "add products to your cart"),
    ("checkout", "check out securely"),
    ("get_order", "tell you where your order is"),
]
MY_DATA = (
    "You decide what happens to your data, so I can't delete or download it for you: use the “Your data” "
    "button (the shield icon at the top of this chat) to download everything Shine keeps about you, delete "
    "it, or close your account. Orders stay with the shop for its records."
)
NEEDS = {
    "upload": "Attach a clear, front-facing photo of your face (the camera button, or `/photo PATH` in the "
    "terminal) and I'll analyse it.",
    "product_id": "Which product do you mean? After a search, say “the first one”, or give its id (prd_…).",
    "product_ids": "Which products do you mean? After a search, say “the first one”, or give their ids (prd_…).",
    "report_id": "I need a skin report for that: attach a selfie first and I'll analyse it.",
    "previous_report_id": "I need two skin reports to compare: analyse another photo first.",
    "order_id": "Which order? Give its id (ord_…).",
    "remembered_skin_type": "Tell me your skin type, concerns or allergies first, then say “save it” and I'll keep them.",
    "compare_ids": "Which products should I compare? After a search, say “compare the first and the second”.",
    "query": "What should I look for? Name a product type, an ingredient or a concern.",
    "image_query": "What would you like to see images of?",
    "subscription_id": "Which refills do you mean? Say “show my refills” and use the buttons on the one to change.",
    "routine_product_ids": "Let's build your routine first (say “build me a routine for dry skin”); then say "
    "“subscribe to the routine” and I'll tell you how often and the price before anything starts.",
}


WHICH_ONE = "Which one do you mean"
PROPOSAL = "Nothing was changed yet."  # how a confirm-first tool starts its answer to a call without confirm

DO_YOU_MEAN = "Do you mean the"
WHICH_ORDER = "Which order should I ask a refund for?"
REFUND_QUESTION = "Shall I ask the shop for a refund"
# Orders a refund can be asked for: paid, and not refunded in full.
REFUNDABLE = frozenset({"paid", "fulfilling", "shipped", "partially_refunded"})


def refundable(orders: Any) -> list[dict[str, Any]]:
    return [o for o in orders or [] if isinstance(o, dict) and o.get("status") in REFUNDABLE]


def which_one(candidates: list[dict[str, Any]]) -> str:
    """Ask which of the products that match the shopper's words they mean (the cards show them)."""
    named = []
    for product in candidates:
        price = money(product.get("price"))
        named.append(label(product) + (f" ({price})" if price else ""))
    if len(named) == 1:
        return f"{DO_YOU_MEAN} {named[0]}? Say “yes”, or tell me the product's name."
    listed = ", ".join(named[:-1]) + f" or {named[-1]}"
    return f"{WHICH_ONE}: {listed}? Tell me its name, or say “the first one” for the first card."


def _last(turn: list[Seen], *names: str) -> Seen | None:
    for seen in reversed(turn):
        if not names or seen.name in names:
            return seen
    return None


_SAME_AS_TYPE = {"dry": "dryness", "oily": "oiliness", "sensitive": "sensitivity"}


def _describe(reading: Reading, products: list[dict[str, Any]] | None = None) -> str:
    parts = []
    if reading.category:
        parts.append(reading.category.replace("_", " ") + "s")
    if reading.skin_type:
        parts.append(f"for {reading.skin_type} skin")
    concerns = [c for c in reading.concerns if c != _SAME_AS_TYPE.get(reading.skin_type or "")]
    if concerns:
        parts.append(
            ("targeting " if parts else "for ") + " and ".join(c.replace("_", " ") for c in concerns)
        )
    if reading.budget:
        display = money((products or [{}])[0].get("price"))
        symbol = display[: len(display) - len(display.lstrip("$€£¥₹₩AC"))] if display else ""
        parts.append(f"under {symbol}{reading.budget:g}")
    return " ".join(parts)


def _products_text(seen: Seen, reading: Reading, specs: dict[str, ToolSpec]) -> str:
    if not seen.ok:
        return f"I couldn't search the catalog: {seen.text}"
    products = products_in(seen.structured, seen.input)
    structured = seen.structured if isinstance(seen.structured, dict) else {}
    if not products:
        understood = "; ".join(strings(structured.get("interpreted"))) or _describe(reading)
        return (
            "Nothing in the catalog matches that"
            + (f" ({understood})" if understood else "")
            + ". Try a higher budget, fewer filters or other words."
        )
    described = _describe(reading, products)
    shown = products[:MAX_CARDS]  # the cards list them; the words only lead in (a phone shows little else)
    head = f"Here {'is' if len(shown) == 1 else 'are'} {len(shown)} I'd suggest" + (
        f" ({described})." if described else "."
    )
    pick = top_pick(shown[0])
    first_reason = str((shown[0]["why"] or [""])[0])
    checks = first_reason if CHECKED.search(first_reason) else None  # what the shopper asked, confirmed
    lines = [
        head,
        ("My top pick: " if len(shown) > 1 else "It's ") + pick + (f": {checks}." if checks else "."),
    ]
    hint = "Ask “what's in the first one?”"
    if "add_to_cart" in specs:
        hint += " or say “add the first one to my cart”."
    lines.append(hint)
    notice = for_shopper(structured.get("notice"))
    if notice:
        lines.append(f"Note: {notice}")
    return "\n".join(lines)


def _help(specs: dict[str, ToolSpec]) -> str:
    can = [text for tool, text in CAPABILITIES if tool in specs]
    cannot = [text for tool, text in CAPABILITIES if tool not in specs]
    lines = ["I can " + "; ".join(can) + "." if can else "This shop has no tools for me to use yet."]
    if cannot:
        lines.append("Not available in this shop yet: " + "; ".join(cannot) + ".")
    lines.append(f"Try: {EXAMPLES}.")
    return "\n".join(lines)


CHECKED = re.compile(r"✓| ≤ | > ")
CHANGES = ("add_to_cart", "remove_from_cart", "update_cart_item", "request_refund")


def _refund(asked: Asked) -> str:
    """Asking for a refund: which order, then what it is and a yes, then the request itself."""
    turn = asked.calls
    if asked.missing:
        return f"I can't {asked.missing[0]} in this shop yet. The shop can help you directly."
    if not turn:  # a no to the question asked last turn
        return "OK, I won't ask for a refund. Tell me if you change your mind."
    requested = _last(turn, "request_refund")
    if requested is not None:
        if not requested.ok:
            return f"I couldn't ask for that refund: {requested.text}"
        order = requested.structured if isinstance(requested.structured, dict) else {}
        return (
            f"Done: the shop has your refund request for order {order.get('order_id')}. They review it and "
            "refund you (no money moves until they do); say “where is my order” to see how it stands."
        )
    detail = _last(turn, "get_order")
    if detail is not None:
        if not detail.ok:
            return f"I couldn't find that order: {detail.text}"
        order = detail.structured if isinstance(detail.structured, dict) else {}
        if order.get("status") not in REFUNDABLE:
            return order_line(order) + "\nThis order can't be refunded: only paid orders can."
        if order.get("refund_requested"):
            return (
                order_line(order)
                + "\nYou already asked for a refund of this order; the shop is reviewing it."
            )
        items = ", ".join(
            f"{line.get('quantity', 1)} × {label(line)}"
            for line in order.get("lines") or []
            if isinstance(line, dict)
        )
        return (
            f"{REFUND_QUESTION} of order {order.get('order_id')}"
            + (f" ({items}; {money(order.get('total'))})" if items else f" ({money(order.get('total'))})")
            + "? The shop reviews the request; no money moves until it approves. Say “yes” to send it, and "
            "tell me why if you like."
        )
    listed = _last(turn, "list_orders")
    if listed is None or not listed.ok:
        return f"I couldn't read your orders: {listed.text}" if listed is not None else NEEDS["order_id"]
    structured = listed.structured if isinstance(listed.structured, dict) else {}
    choices = refundable(structured.get("orders"))
    if not choices:
        return "You have no paid orders to refund."
    lines = [WHICH_ORDER]
    lines += [f"{n}. {order_line(o, brief=True)}" for n, o in enumerate(choices[:10], 1)]
    lines.append("Say “the first one” or give its id (ord_…).")
    return "\n".join(lines)


def _subscribe(seen: Seen | None) -> str:
    """The subscription the tool described (asking for a yes), or the one it started and where to pay."""
    if seen is None:
        return NEEDS["product_id"]
    if not seen.ok:
        if PROPOSAL in seen.text:
            what = seen.text.split(PROPOSAL, 1)[1].split(" Tell the person", 1)[0].strip()
            return f"{what}\n\nShall I start it? Reply “yes” to go ahead."
        return f"I couldn't set up refills: {seen.text}"
    structured = seen.structured if isinstance(seen.structured, dict) else {}
    sub = structured.get("subscription") if isinstance(structured.get("subscription"), dict) else {}
    weeks = sub.get("interval_weeks") if isinstance(sub, dict) else None
    lines = [f"Your refills are set up: every {weeks} weeks." if weeks else "Your refills are set up."]
    if structured.get("checkout_url"):
        lines.append(
            "Pay for the first delivery on the secure page (the button below); the next ones follow."
        )
    return " ".join(lines)


def _refills(seen: Seen | None, intent: Intent) -> str:
    """What a refill change or listing did, or the confirm-first tool's description asking for a yes."""
    if seen is None:
        return NEEDS["subscription_id"]
    if not seen.ok:
        if PROPOSAL in seen.text:
            what = seen.text.split(PROPOSAL, 1)[1].split(" Tell the person", 1)[0].strip()
            return f"{what}\n\nShall I go ahead? Reply “yes” to confirm."
        return f"I couldn't change your refills: {seen.text}"
    structured = seen.structured if isinstance(seen.structured, dict) else {}
    if isinstance(structured.get("subscriptions"), list):
        count = len(structured["subscriptions"])
        if not count:
            return "You have no refill subscriptions yet. After a routine, say “subscribe to the routine”."
        return (
            f"Your refills ({count}): each card shows the next delivery and buttons to skip, pause or cancel."
        )
    date = str(structured.get("next_delivery") or "")[:10]
    said = {
        Intent.SKIP_REFILL: f"Skipped: the next delivery is now {date}." if date else "Skipped.",
        Intent.PAUSE_REFILL: "Paused: nothing is charged or sent until you resume it.",
        Intent.RESUME_REFILL: f"Resumed: the next delivery is {date}." if date else "Resumed.",
        Intent.CANCEL_REFILL: "Cancelled: the delivery already paid for still comes, nothing more is charged.",
    }
    return said.get(intent, "Done.")


@dataclass(frozen=True)
class Asked:
    """What one answer is written from: the message, the conversation (this turn's tool results included),
    the shop's tools, and what the plan could not do (a missing tool) or still needs (a missing slot)."""

    reading: Reading
    context: Context
    specs: dict[str, ToolSpec]
    missing: list[str]
    needs: list[str]
    policy: Policy

    @property
    def calls(self) -> list[Seen]:
        """This turn's tool results."""
        return self.context.current.calls

    def need(self, default: str) -> str:
        """The question for the first slot the plan still needs, else `default`."""
        return NEEDS.get(self.needs[0], NEEDS[default]) if self.needs else NEEDS[default]


Handler = Callable[[Asked], str]

# Answered from the conversation alone: their plans call no tool, so they never ask for a missing detail.
REPLY_ONLY = frozenset({Intent.GREETING, Intent.HELP, Intent.MY_DATA, Intent.UNKNOWN})
# Say themselves what a shop without their tools can do, and what they still need to know.
_OWN_CHECKS = frozenset({Intent.REFUND})
# What a shopper can still do when the tool an intent needs is not in this shop.
_PHOTO_FALLBACK = (
    " Tell me your skin type and what bothers you (e.g. “oily skin, redness, $40”) and I'll find products."
)
_SHOPPING_FALLBACK = " You can still ask me about products and what's in them."
_FALLBACKS = {
    Intent.ANALYZE_PHOTO: _PHOTO_FALLBACK,
    Intent.ADD_TO_CART: _SHOPPING_FALLBACK,
    Intent.CHECKOUT: _SHOPPING_FALLBACK,
    Intent.VIEW_CART: _SHOPPING_FALLBACK,
    Intent.REMOVE_FROM_CART: _SHOPPING_FALLBACK,
    Intent.CHANGE_QUANTITY: _SHOPPING_FALLBACK,
    Intent.ORDER_STATUS: _SHOPPING_FALLBACK,
}


def compose(
    intent: Intent,
    reading: Reading,
    context: Context,
    slots: Slots,
    specs: dict[str, ToolSpec],
    missing: list[str],
    needs: list[str],
    policy: Policy,
) -> str:
    parts: list[str] = []
    if not context.said_anything():
        parts.append(INTRO)
    asked = Asked(reading, context, specs, missing, needs, policy)
    if slots.asked and not missing and not _last(context.current.calls, *CHANGES):
        body = which_one(slots.asked)
    elif intent == Intent.UNKNOWN and slots.refund_proposed():
        body = _refund(asked)  # a "no" to the refund question asked last turn
    else:
        body = answer(intent, asked)
    parts.append(body)
    return "\n\n".join(p for p in parts if p)


def answer(intent: Intent, asked: Asked) -> str:
    """The answer to `intent`: what cannot be done in this shop, the detail still needed, or its handler's."""
    if intent not in _OWN_CHECKS:
        if asked.missing:
            return f"I can't {asked.missing[0]} in this shop yet.{_FALLBACKS.get(intent, '')}"
        if asked.needs and not asked.calls and intent not in REPLY_ONLY:
            return NEEDS.get(asked.needs[0], f"I need more details ({asked.needs[0].replace('_', ' ')}).")
    return HANDLERS[intent](asked)


def _greeting(asked: Asked) -> str:
    return "Hi! What can I help you with? " + f"For example {EXAMPLES}."


def _capabilities(asked: Asked) -> str:
    return _help(asked.specs)


def _my_data(asked: Asked) -> str:
    return MY_DATA


def _unknown(asked: Asked) -> str:
    if asked.reading.avoid:
        return (
            f"Noted: I'll leave out {', '.join(asked.reading.avoid)} (and ingredients named after it) from "
            "everything I suggest in this chat (say “save it” to keep it for next time). What are you "
            "looking for?"
        )
    if asked.context.cart_shown_last_turn(asked.policy.shows_cart, asked.policy.checkout_tools):
        return "OK, I won't check out. Tell me what to change, or say “check out” when you're ready."
    return "I'm not sure what you'd like. " + _help(asked.specs)


def _find_products(asked: Asked) -> str:
    seen = _last(asked.calls, "search_products", "recommend_products")
    return _products_text(seen, asked.reading, asked.specs) if seen else NEEDS["query"]


def _analyze_photo(asked: Asked) -> str:
    turn = asked.calls
    analysis = _last(turn, "analyze_skin")
    if analysis is None:
        return NEEDS["upload"]
    if not analysis.ok:
        return f"I couldn't analyse that photo: {analysis.text}"
    out = [report_text(analysis.structured) if isinstance(analysis.structured, dict) else analysis.text]
    routine = _last(turn, "build_routine")
    if routine is not None and routine.ok and isinstance(routine.structured, dict):
        out.append(routine_text(routine.structured))
    products = _last(turn, "recommend_products", "search_products")
    if products is not None:
        out.append(_products_text(products, asked.reading, asked.specs))
    return "\n\n".join(out)


def _routine(asked: Asked) -> str:
    routine = _last(asked.calls, "build_routine")
    if routine is not None and routine.ok and isinstance(routine.structured, dict):
        offer = refill_offer(asked.context.routine_cards()) if "subscribe" in asked.specs else ""
        return "\n\n".join(p for p in (routine_text(routine.structured), offer) if p)
    if routine is not None and not routine.ok:
        return f"I couldn't build a routine: {routine.text}"
    return basic_routine(asked.calls)


def _subscribe_product(asked: Asked) -> str:
    return _subscribe(_last(asked.calls, "subscribe"))


def _subscribe_routine(asked: Asked) -> str:
    seen = _last(asked.calls, "subscribe_to_routine")
    return _subscribe(seen) if seen is not None else NEEDS["routine_product_ids"]


_REFILL_TOOLS = ("list_subscriptions", "update_subscription", "pause_subscription", "cancel_subscription")


def _my_refills(asked: Asked) -> str:
    return _refills(_last(asked.calls, *_REFILL_TOOLS), Intent.MY_REFILLS)


def _skip_refill(asked: Asked) -> str:
    return _refills(_last(asked.calls, *_REFILL_TOOLS), Intent.SKIP_REFILL)


def _pause_refill(asked: Asked) -> str:
    return _refills(_last(asked.calls, *_REFILL_TOOLS), Intent.PAUSE_REFILL)


def _resume_refill(asked: Asked) -> str:
    return _refills(_last(asked.calls, *_REFILL_TOOLS), Intent.RESUME_REFILL)


def _cancel_refill(asked: Asked) -> str:
    return _refills(_last(asked.calls, *_REFILL_TOOLS), Intent.CANCEL_REFILL)


def _save_profile(asked: Asked) -> str:
    saved = _last(asked.calls, "update_profile")
    if saved is None:
        return "Tell me your skin type, concerns or allergies first, then say “save it” and I'll keep them."
    if not saved.ok:
        return f"I couldn't save that: {saved.text}"
    return profile_saved_text(saved.structured)


def _my_profile(asked: Asked) -> str:
    held = _last(asked.calls, "get_profile")
    if held is None:
        return profile_text(None)
    if not held.ok:
        return f"I couldn't read your profile: {held.text}"
    return profile_text(held.structured)


def _compare_products(asked: Asked) -> str:
    details = [
        c.structured
        for c in asked.calls
        if c.ok and c.name == "get_product" and isinstance(c.structured, dict)
    ]
    return products_compared_text(details) if len(details) >= 2 else NEEDS["compare_ids"]


def _product_info(asked: Asked) -> str:
    detail = _last(asked.calls, "get_product")
    if detail is None:
        search = _last(asked.calls, "search_products")
        if search is not None and not products_in(search.structured):
            return "I couldn't find that product in the catalog. Try its brand or name."
        return NEEDS["product_id"]
    if not detail.ok:
        return f"I couldn't read that product: {detail.text}"
    return detail_text(detail.structured)


def _safety(asked: Asked) -> str:
    check = _last(asked.calls, "check_ingredients")
    if check is not None:
        return check_text(check) if check.ok else f"I couldn't check that: {check.text}"
    detail = _last(asked.calls, "get_product")
    if detail is None:
        return NEEDS["product_id"]
    if not detail.ok:
        return f"I couldn't read that product: {detail.text}"
    caution = (
        "\nThe ingredient checker isn't available in this shop yet, so I can't check clashes for you: "
        "patch-test first, introduce one active at a time, and ask a pharmacist if unsure."
    )
    said = asked.reading.text.lower()
    if "pregnan" in said or "nursing" in said or "breastfeed" in said:
        caution += " If you're pregnant or breastfeeding, check with your doctor before using retinoids or other strong actives."
    return detail_text(detail.structured) + caution


def _images(asked: Asked) -> str:
    seen = _last(asked.calls, "browse_web_images", "find_similar_looks")
    if seen is None:
        return NEEDS["image_query"]
    if not seen.ok:
        return f"I couldn't get images: {seen.text}"
    images = (seen.structured or {}).get("images") if isinstance(seen.structured, dict) else None
    count = len(images) if isinstance(images, list) else 0
    if not count:
        return "I found no images for that."
    return f"Here are {count} images from the web; each links to the page it came from (their owners' content, not the shop's)."


_CART_HEADS = {Intent.ADD_TO_CART: "Added to your cart.\n", Intent.REMOVE_FROM_CART: "Removed.\n"}


def _cart(asked: Asked, intent: Intent) -> str:
    """What adding, removing, changing a quantity or viewing did, then the cart."""
    seen = _last(asked.calls, "add_to_cart", "remove_from_cart", "view_cart", "update_cart_item")
    if seen is None:
        return asked.need("product_id")
    if not seen.ok:
        if intent == Intent.VIEW_CART:
            return f"I couldn't read your cart: {seen.text}"
        return f"I couldn't update your cart: {seen.text}"
    cart = cart_card(seen.structured)
    head = _CART_HEADS.get(intent, "")
    if intent == Intent.CHANGE_QUANTITY:
        head = "Removed one.\n" if ONE_LESS.search(asked.reading.text.lower()) else "Updated.\n"
    tail = ""
    if cart and cart["items"] and "checkout" in asked.specs:
        tail = "\nShall I check out? Press Checkout or say “yes, check out”."
    return head + (cart_text(cart) or "Done.") + tail


def _add_to_cart(asked: Asked) -> str:
    return _cart(asked, Intent.ADD_TO_CART)


def _remove_from_cart(asked: Asked) -> str:
    return _cart(asked, Intent.REMOVE_FROM_CART)


def _change_quantity(asked: Asked) -> str:
    return _cart(asked, Intent.CHANGE_QUANTITY)


def _view_cart(asked: Asked) -> str:
    return _cart(asked, Intent.VIEW_CART)


def _checkout(asked: Asked) -> str:
    done = _last(asked.calls, *asked.policy.checkout_tools)
    if done is not None:
        if not done.ok:
            return f"Not yet: {done.text}"
        structured = done.structured if isinstance(done.structured, dict) else {}
        url = structured.get("checkout_url") or structured.get("url")
        simulated = bool(structured.get("simulated")) or "simulated" in str(url)
        note = " (a simulated checkout: no real payment is taken)" if simulated else ""
        return f"Here is your secure checkout link{note}: {url}"
    view = _last(asked.calls, asked.policy.cart_view_tool)
    if view is None:
        return "I can't show your cart in this shop yet."
    if not view.ok:
        return f"I couldn't read your cart: {view.text}"
    cart = cart_card(view.structured)
    if not cart or not cart["items"]:
        return "Your cart is empty: add something first."
    total = money(cart.get("total"))
    return (
        cart_text(cart)
        + f"\nShall I check out {cart['count']} item{'s' if cart['count'] != 1 else ''}"
        + (f" for {total}" if total else "")
        + "? Say “yes, check out” or press Checkout."
    )


def _order_status(asked: Asked) -> str:
    seen = _last(asked.calls, "get_order", "list_orders")
    if seen is None:
        return NEEDS["order_id"]
    if not seen.ok:
        return f"I couldn't find that order: {seen.text}"
    structured = seen.structured if isinstance(seen.structured, dict) else {}
    if isinstance(structured.get("orders"), list):
        orders = structured["orders"]
        if not orders:
            return "You have no orders yet."
        shown = [o for o in orders[:10] if isinstance(o, dict)]
        asks_one = not re.search(r"\borders\b", asked.reading.text.lower())
        if asks_one and len(shown) == 1:
            return order_line(shown[0])
        head = "Your orders, newest first:" if len(shown) > 1 else "Your orders:"
        return head + "\n" + "\n".join(f"- {order_line(o)}" for o in shown)
    return order_line(structured)


def _my_reports(asked: Asked) -> str:
    seen = _last(asked.calls, "get_skin_report", "list_skin_reports")
    if seen is None or not seen.ok:
        return f"I couldn't read your skin reports: {seen.text}" if seen else NEEDS["report_id"]
    structured = seen.structured if isinstance(seen.structured, dict) else {}
    if seen.name == "get_skin_report":
        return report_text(structured)
    reports = [r for r in structured.get("reports") or [] if isinstance(r, dict)]
    if not reports:
        return "You have no skin reports yet: attach a selfie and I'll analyse it."
    lines = [f"Your skin reports, newest first ({structured.get('total', len(reports))} in all):"]
    for report in reports:
        when = str(report.get("created_at", ""))[:10]
        kind = f", {report['skin_type']} skin" if report.get("skin_type") else ""
        lines.append(f"- {report.get('report_id')} ({when}{kind})")
    lines.append("Say “compare my reports” to see what changed between the last two.")
    return "\n".join(lines)


def _compare_reports(asked: Asked) -> str:
    seen = _last(asked.calls, "compare_skin_reports", "list_skin_reports")
    if seen is None:
        return asked.need("previous_report_id")
    if not seen.ok:
        return f"I couldn't compare: {seen.text}"
    if seen.name == "list_skin_reports":
        return NEEDS["previous_report_id"]
    return comparison_text(seen.structured if isinstance(seen.structured, dict) else {})


# Every intent's answer (tests/advisor/test_offline_intents.py keeps it complete).
HANDLERS: dict[Intent, Handler] = {
    Intent.GREETING: _greeting,
    Intent.HELP: _capabilities,
    Intent.MY_DATA: _my_data,
    Intent.UNKNOWN: _unknown,
    Intent.FIND_PRODUCTS: _find_products,
    Intent.PRODUCT_INFO: _product_info,
    Intent.COMPARE_PRODUCTS: _compare_products,
    Intent.SAFETY: _safety,
    Intent.IMAGES: _images,
    Intent.ANALYZE_PHOTO: _analyze_photo,
    Intent.MY_REPORTS: _my_reports,
    Intent.COMPARE_REPORTS: _compare_reports,
    Intent.ROUTINE: _routine,
    Intent.MY_PROFILE: _my_profile,
    Intent.SAVE_PROFILE: _save_profile,
    Intent.ADD_TO_CART: _add_to_cart,
    Intent.REMOVE_FROM_CART: _remove_from_cart,
    Intent.CHANGE_QUANTITY: _change_quantity,
    Intent.VIEW_CART: _view_cart,
    Intent.CHECKOUT: _checkout,
    Intent.ORDER_STATUS: _order_status,
    Intent.REFUND: _refund,
    Intent.SUBSCRIBE: _subscribe_product,
    Intent.SUBSCRIBE_ROUTINE: _subscribe_routine,
    Intent.MY_REFILLS: _my_refills,
    Intent.SKIP_REFILL: _skip_refill,
    Intent.PAUSE_REFILL: _pause_refill,
    Intent.RESUME_REFILL: _resume_refill,
    Intent.CANCEL_REFILL: _cancel_refill,
}
