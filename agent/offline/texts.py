"""Tool results written out as plain text for the offline advisor's answers (and the terminal)."""

from __future__ import annotations

import re
from typing import Any

from agent.cards import (
    COLOUR_COORDINATES,
    metric_label,
    metric_meaning,
    product_card,
    products_in,
    short_reason,
)
from agent.offline.context import Seen


def money(value: Any) -> str:
    return str(value.get("display")) if isinstance(value, dict) and value.get("display") else ""


def product_line(index: int, card: dict[str, Any]) -> str:
    name = " ".join(str(p) for p in (card.get("brand"), card.get("name")) if p)
    price = money(card.get("price"))
    line = f"{index}. {name}" + (f" — {price}" if price else "")
    if card.get("in_stock") is False:
        line += " (out of stock)"
    if card.get("why"):
        line += f" ({'; '.join(short_reason(w) for w in card['why'][:2])})"
    return line


def top_pick(card: dict[str, Any]) -> str:
    """A product named in a sentence, next to the cards that show the rest: brand, name and price."""
    name = " ".join(str(p) for p in (card.get("brand"), card.get("name")) if p)
    price = money(card.get("price"))
    missing = " (out of stock)" if card.get("in_stock") is False else ""
    return name + (f" ({price})" if price else "") + missing


def strings(value: Any) -> list[str]:
    out: list[str] = []
    for item in value if isinstance(value, list) else []:
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            text = item.get("message") or item.get("text") or item.get("reason") or item.get("summary")
            if isinstance(text, str):
                out.append(text)
    return out


def cart_text(cart: dict[str, Any] | None) -> str:
    if cart is None:
        return ""
    if not cart["items"]:
        return "Your cart is empty."
    lines = [f"Your cart ({cart['count']} item{'s' if cart['count'] != 1 else ''}):"]
    for item in cart["items"]:
        name = " ".join(str(p) for p in (item.get("brand"), item.get("name")) if p) or item.get("product_id")
        price = money(item.get("line_total")) or money(item.get("unit_price"))
        lines.append(f"- {item.get('quantity', 1)} × {name}" + (f" — {price}" if price else ""))
    if cart.get("total"):
        lines.append(f"Total: {money(cart['total'])}")
    return "\n".join(lines)


def report_text(structured: dict[str, Any]) -> str:
    rid = structured.get("report_id") or structured.get("id")
    lines = [f"Your skin report ({rid}):"]
    skin_type = structured.get("skin_type")
    if isinstance(skin_type, dict) and skin_type.get("value"):
        lines.append(f"- Skin type: {skin_type['value']}")
    elif isinstance(skin_type, str):
        lines.append(f"- Skin type: {skin_type}")
    for metric in structured.get("metrics") or []:
        if (
            not isinstance(metric, dict)
            or metric.get("value") is None
            or metric.get("name") in COLOUR_COORDINATES
        ):
            continue
        label = str(metric.get("label") or metric_label(metric.get("name", "")))
        value = metric.get("value")
        shown = f"{value:.3g}" if isinstance(value, float) else str(value)
        unit = f" {metric['unit']}" if metric.get("unit") else ""
        raw_details = metric.get("details")
        details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
        category = f" ({details['category']})" if isinstance(details.get("category"), str) else ""
        confidence = metric.get("confidence")
        sure = f", {confidence:.0%} sure" if isinstance(confidence, int | float) else ""
        meaning = metric_meaning(metric.get("name"), metric.get("explanation"))
        lines.append(f"- {label}: {shown}{unit}{category}{sure}" + (f". {meaning}." if meaning else ""))
    withheld = [
        w.get("name")
        for w in structured.get("withheld") or []
        if isinstance(w, dict) and w.get("kind") != "refusal"
    ]
    if withheld:
        lines.append(
            "- Not measured from this photo: " + ", ".join(str(w).replace("_", " ") for w in withheld)
        )
    notice = for_shopper(structured.get("notice"))
    if notice:
        lines.append(notice)
    return "\n".join(lines)


def routine_text(structured: dict[str, Any]) -> str:
    lines = ["Your routine:"]
    for slot, title in (("am", "Morning"), ("pm", "Evening")):
        steps = structured.get(slot)
        if not isinstance(steps, list):
            continue
        lines.append(f"{title}:")
        for i, step in enumerate(steps, 1):
            if not isinstance(step, dict):
                continue
            card = (
                product_card(step.get("product"))
                if isinstance(step.get("product"), dict)
                else product_card(step)
            )
            name = f"{card.get('brand') or ''} {card.get('name')}".strip() if card else ""
            label = str(step.get("step") or step.get("category") or "").replace("_", " ")
            price = money(card.get("price")) if card else ""
            lines.append(f"{i}. {label}: {name}" + (f" — {price}" if price else ""))
    budget = money(structured.get("budget"))
    if money(structured.get("total")):
        lines.append(f"Total: {money(structured.get('total'))}" + (f" (budget {budget})" if budget else ""))
    dropped = ", ".join(strings(structured.get("dropped_steps")))
    if dropped:
        why = f"to stay within {budget}" if budget else "(nothing suitable goes with the rest)"
        lines.append(f"Left out {why}: {dropped}.")
    lines += strings(structured.get("warnings"))
    return "\n".join(lines)


def refill_offer(cards: list[dict[str, Any]]) -> str:
    """One line after a routine: its products can come as refills (the subscribe tool says how often and
    the price, from the product's size and use, before anything starts)."""
    kinds = [str(c.get("category") or "").replace("_", " ") for c in cards]
    # A kind the routine has one product of, so that "subscribe to the …" names exactly one.
    example = next(
        (k for k in ("serum", "moisturiser", "cleanser", "sunscreen") if kinds.count(k) == 1), None
    )
    ask = f"say “subscribe to the {example}”" if example else "say “subscribe to” and the product"
    together = " or all of them in one parcel (say “subscribe to the routine”)" if len(cards) >= 2 else ""
    return (
        f"Want refills? I can send any of these every few weeks ({ask}){together}; I'll tell you how often "
        "and the price before anything starts."
    )


def basic_routine(turn: list[Seen]) -> str:
    picks = [(c, products_in(c.structured)) for c in turn if c.name == "search_products" and c.ok]
    lines = ["A simple starting routine (the routine builder isn't available in this shop yet):"]
    for seen, products in picks:
        category = str(seen.input.get("category", "")).replace("_", " ")
        if products:
            lines.append(f"- {category}: {product_line(1, products[0])[3:]}")
    lines.append("Use sunscreen every morning, and introduce one new product at a time.")
    return "\n".join(lines) if len(lines) > 2 else "I couldn't find products for a routine in this catalog."


def change_line(change: Any) -> str | None:
    if not isinstance(change, dict) or change.get("name") in COLOUR_COORDINATES:
        return None
    name = str(change.get("name", "")).replace("_", " ")
    before, after, delta = change.get("before"), change.get("after"), change.get("change")
    numbers = all(isinstance(v, int | float) for v in (before, after, delta))
    if not numbers:
        return f"- {name}: not comparable" + (f" ({change['note']})" if change.get("note") else "")
    spread = change.get("uncertainty")
    margin = f" ± {spread:.2g}" if isinstance(spread, int | float) else ""
    verdict = str(change.get("verdict") or "").replace("_", " ")
    unit = change.get("unit") or ""
    return f"- {name}: {before:.3g} → {after:.3g} {unit} ({delta:+.2g}{margin}{': ' + verdict if verdict else ''})"


def comparison_text(structured: dict[str, Any]) -> str:
    lines = [line for line in (change_line(c) for c in structured.get("changes") or []) if line]
    if not lines:
        lines = [f"- {c}" for c in strings(structured.get("changes"))]
    out = (
        ["What changed between your two reports:", *lines]
        if lines
        else ["No measurable change between the two reports."]
    )
    out += [str(n) for n in structured.get("notes") or [] if isinstance(n, str)]
    notice = for_shopper(structured.get("notice"))
    if notice:
        out.append(notice)
    return "\n".join(out)


def order_line(order: dict[str, Any], brief: bool = False) -> str:
    """One order in a sentence: status, total, when, the carrier and tracking number once shipped, and
    (unless `brief`) what happens next."""
    oid = order.get("order_id") or order.get("id")
    status = order.get("status") or "unknown"
    total = money(order.get("total"))
    when = str(order.get("created_at") or "")[:10]
    tracking, carrier = order.get("tracking_number"), order.get("carrier")
    next_steps = order.get("next_steps")
    shipped = ""
    if tracking and (brief or str(tracking) not in str(next_steps)):
        shipped = f", tracking {tracking}" + (f" ({carrier})" if carrier else "")
    elif carrier:
        shipped = f", sent with {carrier}"
    return (
        f"Order {oid}: {str(status).replace('_', ' ')}"
        + (f", {total}" if total else "")
        + (f", placed {when}" if brief and when else "")
        + shipped
        + (", refund requested" if order.get("refund_requested") else "")
        + (f". {next_steps}" if not brief and isinstance(next_steps, str) and next_steps else "")
    )


# A notice for the merchant, not the shopper: how the shop is set up and how to change it.
_FOR_MERCHANT = re.compile(
    r"merchant|admin|configur|`|demo catalog|offline advisor|no (ai )?model|SHINE_|api key|stripe key", re.I
)


def for_shopper(notice: Any) -> str | None:
    """The sentences of a tool's notice a shopper should read; set-up notes stay in the merchant's logs."""
    if not isinstance(notice, str):
        return None
    sentences = re.split(r"(?<=[.!?])\s+", notice.strip())
    kept = [s for s in sentences if s and not _FOR_MERCHANT.search(s)]
    return " ".join(kept) or None


def detail_text(structured: Any) -> str:
    if not isinstance(structured, dict):
        return str(structured)
    name = " ".join(str(p) for p in (structured.get("brand"), structured.get("name")) if p)
    price = money(structured.get("price"))
    size = structured.get("size")
    head = name + (f" ({size})" if size else "") + (f" costs {price}." if price else ".")
    ingredients = structured.get("ingredients") or []
    listed = ", ".join(str(i) for i in ingredients[:15]) + (" …" if len(ingredients) > 15 else "")
    lines = [head]
    if listed:
        lines.append(f"Ingredients: {listed}")
    suits = [s.replace("_", " ") for s in structured.get("skin_types") or []]
    targets = [c.replace("_", " ") for c in structured.get("concerns") or []]
    if suits:
        lines.append("Suits " + ", ".join(suits) + " skin.")
    if targets:
        lines.append("Targets " + ", ".join(targets) + ".")
    return "\n".join(lines)


def products_compared_text(details: list[dict[str, Any]]) -> str:
    """Side by side: price and size, rating, who each suits, claims; the cheapest for the amount when the
    sizes share a unit, the best rated when each has enough reviews to say."""
    lines = ["Side by side:"]
    unit_prices: dict[str, float] = {}
    units: set[str] = set()
    currencies: set[str] = set()
    for d in details:
        name = " ".join(str(p) for p in (d.get("brand"), d.get("name")) if p)
        raw_price = d.get("price")
        price: dict[str, Any] = raw_price if isinstance(raw_price, dict) else {}
        currencies.add(str(price.get("currency")))
        parts = [money(price) or "price unknown"]
        if d.get("size"):
            parts.append(str(d["size"]))
        size = re.match(r"\s*(\d+(?:\.\d+)?)\s*(ml|g)\b", str(d.get("size") or ""), re.IGNORECASE)
        if size and isinstance(price.get("amount_minor"), int) and float(size.group(1)) > 0:
            unit_prices[name] = price["amount_minor"] / float(size.group(1))
            units.add(size.group(2).lower())
        if d.get("rating") is not None:
            parts.append(f"rated {d['rating']}/5 ({d.get('review_count', 0)} reviews)")
        lines.append(f"- {name}: " + ", ".join(parts))
        for label, key in (("suits", "skin_types"), ("targets", "concerns"), ("claims", "tags")):
            values = ", ".join(str(v).replace("_", " ") for v in d.get(key) or [])
            if values:
                lines.append(f"  {label}: {values}")
    if len(unit_prices) == len(details) and len(units) == 1 and len(currencies) == 1:
        lines.append(f"Cheapest for the amount: {min(unit_prices, key=lambda n: unit_prices[n])}.")
    rated = [d for d in details if d.get("rating") is not None and (d.get("review_count") or 0) >= 20]
    top = max((float(d["rating"]) for d in rated), default=None)
    leaders = [d for d in rated if float(d["rating"]) == top]
    if len(rated) == len(details) and len(leaders) == 1:
        lines.append(f"Best rated: {leaders[0].get('brand')} {leaders[0].get('name')}.")
    lines.append("Ask “can I use them together?” to check their ingredients for clashes.")
    return "\n".join(lines)


def profile_saved_text(structured: Any) -> str:
    profile = structured if isinstance(structured, dict) else {}
    parts = []
    if profile.get("skin_type"):
        parts.append(f"skin type {profile['skin_type']}")
    if profile.get("concerns"):
        parts.append("concerns " + ", ".join(str(c).replace("_", " ") for c in profile["concerns"]))
    if profile.get("avoid_ingredients"):
        parts.append("avoid " + ", ".join(str(a) for a in profile["avoid_ingredients"]))
    held = "; ".join(parts) or "nothing yet"
    return (
        f"Saved to your profile: {held}. Recommendations, routines and ingredient checks use it from now "
        "on, in every chat. You can see, download or delete it with the “Your data” button."
    )


PROFILE_EMPTY = (
    "Nothing is saved in your profile yet. Tell me your skin type, concerns or allergies (e.g. “oily skin, "
    "acne, allergic to lanolin”), then say “save it” and I'll keep them for every chat."
)
PROFILE_CHANGE = (
    "To change it, tell me what changed (e.g. “my skin is dry now” or “I'm allergic to lanolin”) and say "
    "“save it”. The “Your data” button lets you download or delete it."
)


def _words(values: Any) -> str:
    return ", ".join(str(v).replace("_", " ") for v in values if str(v).strip())


def profile_text(structured: Any) -> str:
    """The saved profile in a shopper's words, one thing a line, and how to change it."""
    profile = structured if isinstance(structured, dict) else {}
    lines: list[str] = []
    if profile.get("skin_type"):
        lines.append(f"- Skin type: {str(profile['skin_type']).replace('_', ' ')}")
    for key, title in (
        ("concerns", "Concerns"),
        ("avoid_ingredients", "Allergies and ingredients you avoid"),
        ("sensitivities", "What irritates your skin"),
        ("preferences", "Preferences"),
    ):
        listed = profile.get(key)
        if isinstance(listed, list) and _words(listed):
            lines.append(f"- {title}: {_words(listed)}")
    if profile.get("pregnant_or_nursing") is True:
        lines.append("- Pregnant or breastfeeding: yes (I leave out retinoids and other actives not advised)")
    budget = money(profile.get("budget"))
    if budget:
        lines.append(f"- Budget for a routine: {budget}")
    if profile.get("country"):
        lines.append(f"- Country: {profile['country']}")
    elif profile.get("hemisphere"):
        lines.append(f"- Where you live: {profile['hemisphere']}ern hemisphere")
    if not lines:
        return PROFILE_EMPTY
    return "\n".join(
        [
            "Here's what I keep in your profile (recommendations, routines and ingredient checks use it):",
            *lines,
            PROFILE_CHANGE,
        ]
    )


def check_text(seen: Seen) -> str:
    structured = seen.structured if isinstance(seen.structured, dict) else {}
    findings: list[str] = []
    for key in ("clashes", "conflicts", "interactions", "avoided", "avoid", "cautions", "warnings", "issues"):
        findings += strings(structured.get(key))
    items = structured.get("items")
    count = len(items) if isinstance(items, list) else 0
    checked = f"the {count} products" if count > 1 else "it"
    lines: list[str] = []
    if seen.input.get("pregnant_or_nursing"):
        cautions = structured.get("cautions")
        listed = cautions if isinstance(cautions, list) else []
        if not any(isinstance(c, dict) and c.get("kind") == "pregnancy" for c in listed):
            lines.append(
                f"Pregnancy: nothing in {checked} is on Shine's pregnancy caution list (retinoids and the like). "
                "Still, check new products with your doctor or midwife."
            )
    listed_items = items if isinstance(items, list) else []
    labels = [str(i.get("label")) for i in listed_items if isinstance(i, dict) and i.get("label")]
    clashes = structured.get("clashes")
    if len(labels) > 1 and not clashes:
        names = ", ".join(labels[:-1]) + f" and {labels[-1]}"
        lines.append(f"No clashes between {names}.")
    if not findings:
        lines.append(f"I found no clashes, avoided ingredients or cautions in {checked} for your profile.")
        return "\n".join(lines)
    lines.append("Here's what I found:")
    return "\n".join(lines + [f"- {f}" for f in findings[:10]])
