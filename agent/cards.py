"""Turning tool results into what a person sees: one-line summaries and cards (products, cart, routine…).

Shapes are read generically (a list of objects with `prd_` ids is products, an `am`/`pm` pair is a
routine, a `checkout_url` is a checkout link), so tools added later get cards without changes here.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from agent.events import Card
from agent.model import ToolCall
from agent.policy import Policy

LABELS = {
    "search_products": "Searching the catalog",
    "get_product": "Reading the product details",
    "recommend_products": "Choosing products for you",
    "build_routine": "Building your routine",
    "check_ingredients": "Checking the ingredients",
    "get_profile": "Reading your profile",
    "update_profile": "Saving your preferences",
    "rate_product": "Saving your rating",
    "analyze_skin": "Analysing your photo",
    "get_skin_report": "Reading your skin report",
    "list_skin_reports": "Listing your skin reports",
    "compare_skin_reports": "Comparing your reports",
    "browse_web_images": "Looking for images on the web",
    "find_similar_looks": "Looking for similar looks",
    "read_product_page": "Reading the product page",
    "add_to_cart": "Adding to your cart",
    "update_cart_item": "Updating your cart",
    "remove_from_cart": "Removing from your cart",
    "view_cart": "Reading your cart",
    "checkout": "Preparing a secure checkout",
    "get_order": "Looking up your order",
    "list_orders": "Listing your orders",
    "subscribe": "Preparing your refills",
    "subscribe_to_routine": "Preparing your routine's refills",
    "list_subscriptions": "Listing your refills",
    "update_subscription": "Changing your refills",
    "pause_subscription": "Changing your refills",
    "cancel_subscription": "Cancelling your refills",
}
# Raw CIELAB coordinates say little to a shopper; ITA (with its category) summarises skin colour.
COLOUR_COORDINATES = frozenset({"lab_l", "lab_a", "lab_b", "hue_angle"})
# What a shopper calls each measurement; the tool's own names are for programs.
METRIC_LABELS = {
    "ita": "Skin tone (ITA)",
    "redness": "Redness",
    "shine": "Shine",
    "tone_unevenness": "Uneven tone",
    "texture": "Texture",
    "dark_spots": "Dark spots",
}


METRIC_MEANINGS = {
    "ita": "A colour category of your skin tone, not how it reacts to the sun",
    "redness": "How much redder your cheeks are than your forehead",
    "shine": "How much of your forehead and nose shows shine",
    "tone_unevenness": "How blotchy your tone is, once shadows are taken out",
    "texture": "Fine roughness, lines and visible pores (camera noise adds to it)",
    "dark_spots": "Small spots darker than the skin around them: a count to follow, not a diagnosis",
}


def metric_label(name: Any) -> str:
    return METRIC_LABELS.get(str(name), str(name).replace("_", " ").capitalize())


def metric_meaning(name: Any, explanation: Any) -> str | None:
    """What a measurement means in plain words; for one Shine does not know yet, the first clause of the
    tool's own explanation."""
    if str(name) in METRIC_MEANINGS:
        return METRIC_MEANINGS[str(name)]
    if not isinstance(explanation, str) or not explanation.strip():
        return None
    first = re.split(r"[;:]| \(", explanation, maxsplit=1)[0].strip()
    return first[:1].upper() + first[1:] if first else None


PRODUCT_LISTS = ("products", "recommendations", "results", "matches")
MAX_CARDS = 8


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def _short(value: Any, limit: int = 60) -> str | None:
    if isinstance(value, str):
        if value.startswith("data:") or len(value) > 500:
            return None  # photos and blobs are not worth showing
        text = value.strip()
        return f"“{text[:limit]}{'…' if len(text) > limit else ''}”" if text else None
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return ", ".join(v.replace("_", " ") for v in value[:4])
    return None


def started_summary(call: ToolCall) -> str:
    details: list[str] = []
    for key, value in call.input.items():
        shown = _short(value)
        if shown is None:
            continue
        details.append(
            shown
            if key in ("query", "product_id", "order_id", "report_id")
            else f"{key.replace('_', ' ')} {shown}"
        )
    return label(call.name) + (": " + ", ".join(details[:4]) if details else "")


def _money(value: Any) -> dict[str, Any] | None:
    if isinstance(value, dict) and "display" in value:
        return {k: value.get(k) for k in ("amount_minor", "currency", "display")}
    return None


_EVIDENCE = re.compile(r"\((?:strong|moderate|limited|weak|emerging|mixed)[^()]*evidence\)")
_AUTHOR = re.compile(r"^([A-Z][A-Za-z'’-]+) [A-Z]{1,3}\b")


def _top_level_colon(text: str) -> int:
    depth = 0
    for at, char in enumerate(text):
        depth += (char == "(") - (char == ")")
        if char == ":" and depth == 0:
            return at
    return -1


def short_reason(why: str) -> str:
    """A reason short enough for a card or a line of chat: 'contains Benzoyl Peroxide, which targets acne
    (strong evidence) [Zaenglein et al.]'. The tool result keeps the whole sentence and reference."""
    text, _, source = why.partition(" [")
    source = source.rstrip("]")
    cut = _top_level_colon(text)
    if text.startswith("contains ") and cut > 0:
        evidence = _EVIDENCE.search(text)
        text = text[:cut] + (f" {evidence.group(0)}" if evidence else "")
    if not source:
        return text
    author = _AUTHOR.match(source)
    if author:
        authors = source.split(".", 1)[0]  # "Zaenglein AL, Pathy AL, Schlosser BJ, et al" or "Boo YC"
        cited = f"{author.group(1)} et al." if "," in authors else author.group(1)
    else:
        cited = source.split(":", 1)[0][:40]
    return f"{text} [{cited}]"


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    out: list[str] = []
    if isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                out.append(item)
            elif isinstance(item, dict):
                text = item.get("text") or item.get("reason") or item.get("message")
                if isinstance(text, str):
                    source = item.get("source")
                    out.append(
                        short_reason(f"{text} [{source}]" if isinstance(source, str) and source else text)
                    )
    return out


_SAME_AS_TYPE = {"dry": "dryness", "oily": "oiliness", "sensitive": "sensitivity"}
# Reasons that only restate a filter; a checks line ("for dry skin ✓, $19.99 ≤ $25") says it shorter.
_RESTATES = re.compile(r"^(suited to .* skin|targets [a-z _]+|free of .*|.* is within .*)$")


def _texts(obj: dict[str, Any], product: dict[str, Any]) -> list[str]:
    out = [str(t) for t in product.get("matched") or [] if isinstance(t, str)]
    for reason in obj.get("reasons") or []:
        text = reason.get("text") if isinstance(reason, dict) else reason
        if isinstance(text, str):
            out.append(text)
    return out


def asked_checks(asked: dict[str, Any], obj: dict[str, Any]) -> str | None:
    """Each constraint of the call that asked for the product, confirmed on the product's own data:
    "fragrance-free ✓, for dry skin ✓, $19.99 ≤ $25" (a price over the budget says so: "$27.00 > $25")."""
    product = obj["product"] if isinstance(obj.get("product"), dict) else obj
    texts = _texts(obj, product)
    tags = [str(t) for t in product.get("tags") or []]
    query = str(asked.get("query") or "").lower()
    avoided = [
        str(a).lower() for a in (asked.get("exclude_ingredients") or asked.get("avoid_ingredients") or [])
    ]
    checks: list[str] = []
    for tag in tags:
        words = tag.replace("_", "-")
        wanted = words in query or tag.replace("_", " ") in query
        if tag.endswith("_free") and tag.removesuffix("_free").replace("_", " ") in avoided:
            wanted = True
        if wanted:
            checks.append(f"{words} ✓")
    for word in avoided:
        if f"{word.replace(' ', '_')}_free" not in tags and f"free of {word}" in texts:
            checks.append(f"{word}-free ✓")
    skin_type = asked.get("skin_type")
    if isinstance(skin_type, str) and (
        skin_type in (product.get("skin_types") or []) or f"suited to {skin_type} skin" in texts
    ):
        checks.append(f"for {skin_type} skin ✓")
    for concern in asked.get("concerns") or []:
        if concern != _SAME_AS_TYPE.get(str(skin_type)) and concern in (product.get("concerns") or []):
            checks.append(f"for {str(concern).replace('_', ' ')} ✓")
    limit = asked.get("max_price") if asked.get("max_price") is not None else asked.get("budget")
    price = _money(product.get("price"))
    if (
        isinstance(limit, int | float)
        and not isinstance(limit, bool)
        and price
        and price["amount_minor"] is not None
    ):
        display = str(price["display"])
        symbol = display[: len(display) - len(display.lstrip("$€£¥₹₩AC"))]
        budget = f"{symbol}{limit:g}"
        checks.append(
            f"{display} ≤ {budget}"
            if price["amount_minor"] <= round(limit * 100)
            else f"{display} > {budget}"
        )
    return ", ".join(checks) or None


def where_to_buy(value: Any) -> dict[str, str] | None:
    """A product's "Buy at <merchant>" link for the widget: Shine's own click-out route (never a merchant URL
    straight from a result), marked as followed from the widget, with its disclosure line."""
    if not isinstance(value, dict) or not all(
        isinstance(value.get(key), str) and value.get(key) for key in ("url", "merchant", "disclosure")
    ):
        return None
    parts = urlsplit(value["url"])
    if parts.scheme not in ("http", "https") or not parts.path.startswith("/out/"):
        return None
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "src"] + [("src", "widget")]
    url = urlunsplit(parts._replace(query=urlencode(query)))
    return {"url": url, "merchant": value["merchant"], "disclosure": value["disclosure"]}


def _image_size(image: Any) -> dict[str, int] | None:
    """The picture's intrinsic size, when the result knows it: the card keeps its aspect ratio."""
    if not isinstance(image, dict):
        return None
    width, height = image.get("width"), image.get("height")
    if isinstance(width, int) and isinstance(height, int) and width > 0 and height > 0:
        return {"width": width, "height": height}
    return None


def product_card(obj: Any, asked: dict[str, Any] | None = None) -> dict[str, Any] | None:
    """A product (or a recommendation wrapping one) as a card, or None when it is not one. `asked`: the
    arguments of the call that found it, whose constraints the first reason confirms."""
    if not isinstance(obj, dict):
        return None
    product = obj["product"] if isinstance(obj.get("product"), dict) else obj
    pid = product.get("id") or product.get("product_id")
    if not isinstance(pid, str) or not pid.startswith("prd_") or not product.get("name"):
        return None
    why = _strings(obj.get("reasons")) or _strings(obj.get("why")) or _strings(product.get("matched"))
    checks = asked_checks(asked, obj) if asked else None
    if checks:
        why = [checks, *(w for w in why if not _RESTATES.match(w))]
    sources: dict[str, str] = {}  # the evidence behind the reasons shown: short name -> link
    for reason in obj.get("reasons") or []:
        if (
            isinstance(reason, dict)
            and reason.get("source")
            and str(reason.get("source_url", "")).startswith("https://")
        ):
            cited = short_reason(f"x [{reason['source']}]").split(" [", 1)[1].rstrip("]")
            sources.setdefault(cited, str(reason["source_url"]))
    return {
        "id": pid,
        "name": product.get("name"),
        "brand": product.get("brand"),
        "category": product.get("category"),
        "price": _money(product.get("price")) or _money(obj.get("price")),
        "price_max": _money(product.get("price_max")),
        "variants": variant_choices(product.get("variants")),
        "size": product.get("size"),
        "image_url": product.get("image_url"),
        "image_size": _image_size(product.get("image")),
        "url": product.get("url"),
        "rating": product.get("rating"),
        "in_stock": product.get("in_stock", True),
        "where_to_buy": where_to_buy(product.get("where_to_buy")),
        "why": why[:4],
        "sources": [{"name": name, "url": url} for name, url in list(sources.items())[:3]],
    }


def products_in(structured: Any, asked: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The products a result lists, as cards in the tool's order except that out-of-stock ones go last:
    a shopper's top picks (and "the first one") should be things they can buy. `asked`: the arguments of
    the call, whose constraints each card's first reason confirms."""
    if not isinstance(structured, dict):
        return []
    for key in PRODUCT_LISTS:
        items = structured.get(key)
        if isinstance(items, list):
            cards = [c for c in (product_card(i, asked) for i in items) if c is not None]
            if cards:
                return sorted(cards, key=lambda c: c["in_stock"] is False)
    return []


def variant_title(product_id: Any, variant_id: Any, name: Any) -> str | None:
    """Which size or shade a cart line is: the title after " – " in its name ("Tint – Green / S"), unless
    it is the product's only (default, untitled) variant, whose id is "var_" and the product's own hex."""
    if not isinstance(variant_id, str) or not isinstance(name, str) or " – " not in name:
        return None
    if isinstance(product_id, str) and variant_id == "var_" + product_id.removeprefix("prd_"):
        return None
    return name.rpartition(" – ")[2] or None


def variant_choices(value: Any) -> list[dict[str, Any]]:
    """A product's in-stock variants a shopper can pick from, when it has more than one."""
    if not isinstance(value, list) or len(value) < 2:
        return []
    return [
        {
            "id": v["id"],
            "title": v.get("title") or v["id"],
            "price": (_money(v.get("price")) or {}).get("display"),
        }
        for v in value
        if isinstance(v, dict) and isinstance(v.get("id"), str) and v.get("in_stock", True)
    ]


def cart_card(structured: Any) -> dict[str, Any] | None:
    cart = (
        structured.get("cart")
        if isinstance(structured, dict) and isinstance(structured.get("cart"), dict)
        else structured
    )
    lines = cart.get("items", cart.get("lines")) if isinstance(cart, dict) else None
    if not isinstance(cart, dict) or not isinstance(lines, list):
        return None
    items = []
    for item in lines:
        if not isinstance(item, dict):
            continue
        product = item["product"] if isinstance(item.get("product"), dict) else item
        product_id = product.get("product_id") or product.get("id")
        items.append(
            {
                "item_id": item.get("id") if item is not product else item.get("item_id"),
                "product_id": product_id,
                "variant_id": item.get("variant_id"),
                "variant": variant_title(product_id, item.get("variant_id"), product.get("name")),
                "name": product.get("name"),
                "brand": product.get("brand"),
                "image_url": product.get("image_url"),
                "quantity": item.get("quantity", 1),
                "unit_price": _money(item.get("unit_price")) or _money(product.get("price")),
                "line_total": _money(item.get("line_total")) or _money(item.get("subtotal")),
            }
        )
    total = _money(cart.get("total")) or _money(cart.get("subtotal"))
    return {"items": items, "total": total, "count": sum(int(i["quantity"] or 0) for i in items)}


def cart_fingerprint(structured: Any) -> str | None:
    """Which products in what quantities: what the shopper confirmed when they saw the cart."""
    card = cart_card(structured)
    if card is None:
        return None
    pairs = sorted(f"{i['product_id']}/{i['variant_id']}x{i['quantity']}" for i in card["items"])
    total = (card["total"] or {}).get("amount_minor")
    return "|".join(pairs) + f"={total}"


def _first_url(structured: dict[str, Any]) -> str | None:
    for key in ("checkout_url", "url", "payment_url"):
        value = structured.get(key)
        if isinstance(value, str) and value.startswith(("https://", "http://")):
            return value
    return None


_SET_UP = re.compile(r"\s*This shop runs a SIMULATED checkout.*$", re.DOTALL)


def _subscription(view: dict[str, Any]) -> dict[str, Any] | None:
    """A refill subscription as its card shows it: the products, how often, the next delivery, the price per
    delivery with the saving, and the changes it allows now (each button asks the advisor, which asks the
    shopper first where the tool requires it)."""
    sub_id, status = view.get("subscription_id"), view.get("status")
    if not (isinstance(sub_id, str) and sub_id.startswith("sub_") and isinstance(status, str)):
        return None
    items = [i for i in view.get("items") or [] if isinstance(i, dict)]
    live = status in ("active", "past_due")
    ending = bool(view.get("cancels_at_period_end"))
    actions = []
    if live and view.get("next_delivery") and not ending:
        actions.append("skip")
    if live and not ending:
        actions.append("pause")
    if status == "paused":
        actions.append("resume")
    if status != "canceled" and status != "incomplete" and not ending:
        actions.append("cancel")
    url = view.get("checkout_url")
    notice = view.get("notice") if isinstance(view.get("notice"), str) else None
    if (
        notice
    ):  # how the shop is set up is the merchant's business: the card says "simulated" in words of its own
        notice = _SET_UP.sub("", notice).strip() or None
    return {
        "id": sub_id,
        "status": status,
        "products": [f"{i.get('quantity') or 1} × {i.get('name') or i.get('product_id')}" for i in items],
        "interval_weeks": view.get("interval_weeks"),
        "next_delivery": view.get("next_delivery"),
        "paid_through": view.get("paid_through"),
        "amount": _money(view.get("amount_per_delivery")),
        "discount_percent": view.get("discount_percent") or 0,
        "cancels_at_period_end": ending,
        "checkout_url": url if isinstance(url, str) and url.startswith(("https://", "http://")) else None,
        "simulated": bool(view.get("simulated")),
        "notice": notice,
        "actions": actions,
    }


def subscriptions_card(structured: dict[str, Any]) -> dict[str, Any] | None:
    """The refill subscriptions a result shows: a list (list_subscriptions), one just started (subscribe,
    subscribe_to_routine: the payment link is the started one's), or one just changed."""
    if isinstance(structured.get("subscriptions"), list):
        views = [v for v in structured["subscriptions"] if isinstance(v, dict)]
    elif isinstance(structured.get("subscription"), dict):
        views = [{**structured["subscription"], "checkout_url": structured.get("checkout_url")}]
    else:
        views = [structured]
    shown = [card for card in (_subscription(v) for v in views) if card is not None]
    if not shown and not isinstance(structured.get("subscriptions"), list):
        return None
    return {"subscriptions": shown[:MAX_CARDS]}


def _order(structured: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": structured.get("order_id") or structured.get("id"),
        "status": structured.get("status"),
        "total": _money(structured.get("total")),
        "created_at": structured.get("created_at"),
        "tracking_number": structured.get("tracking_number"),
        "carrier": structured.get("carrier"),
    }


def _routine(structured: dict[str, Any]) -> dict[str, Any] | None:
    slots: dict[str, list[Any]] = {k: v for k in ("am", "pm") if isinstance(v := structured.get(k), list)}
    if not slots:
        return None
    out: dict[str, Any] = {}
    for slot, steps in slots.items():
        out[slot] = [
            {
                "step": s.get("step") or s.get("name") or s.get("category"),
                "product": product_card(s.get("product"))
                if isinstance(s.get("product"), dict)
                else product_card(s),
                "reason": " ".join(_strings(s.get("reason")) or _strings(s.get("reasons"))),
                "when": s.get("when") or s.get("frequency"),
            }
            for s in steps
            if isinstance(s, dict)
        ]
    out["total"] = _money(structured.get("total"))
    out["warnings"] = _strings(structured.get("warnings"))
    return out


def _images(structured: dict[str, Any]) -> list[dict[str, Any]]:
    images = structured.get("images") or structured.get("results")
    out = []
    for image in images if isinstance(images, list) else []:
        if not isinstance(image, dict):
            continue
        src = image.get("image_url") or image.get("imageUrl")
        if isinstance(src, str) and src.startswith(("https://", "http://")):
            out.append(
                {
                    "image_url": src,
                    "page_url": image.get("page_url") or image.get("url"),
                    "title": image.get("title"),
                    "source": image.get("source_domain") or image.get("source"),
                    "attribution": image.get("attribution"),
                }
            )
    return out[:12]


def _report(structured: dict[str, Any]) -> dict[str, Any] | None:
    rid = structured.get("report_id") or structured.get("id")
    if (
        not isinstance(rid, str)
        or not rid.startswith("rep_")
        or not isinstance(structured.get("metrics"), list)
    ):
        return None  # naming a report (similar looks, advice built on one) does not make a result a report
    metrics = []
    for metric in structured.get("metrics") or []:
        if (
            isinstance(metric, dict)
            and metric.get("value") is not None
            and metric.get("name") not in COLOUR_COORDINATES
        ):
            shown = {k: metric.get(k) for k in ("name", "value", "unit", "confidence")}
            shown["label"] = metric.get("label") or metric_label(metric.get("name"))
            shown["meaning"] = metric_meaning(metric.get("name"), metric.get("explanation"))
            raw_details = metric.get("details")
            details: dict[str, Any] = raw_details if isinstance(raw_details, dict) else {}
            shown["category"] = details.get("category") if isinstance(details.get("category"), str) else None
            metrics.append(shown)
    skin_type = structured.get("skin_type")
    withheld = [w for w in structured.get("withheld") or [] if isinstance(w, dict)]
    return {
        "id": rid,
        "skin_type": skin_type.get("value") if isinstance(skin_type, dict) else skin_type,
        "metrics": metrics[:10],
        "withheld": [w.get("name") for w in withheld if w.get("kind") != "refusal"][:10],
        "never_judged": [w.get("name") for w in withheld if w.get("kind") == "refusal"][:10],
        "notice": structured.get("notice"),
    }


def cards_for(call: ToolCall, structured: Any, policy: Policy) -> list[Card]:
    if not isinstance(structured, dict):
        return []
    name = call.name
    if name in policy.checkout_tools:
        url = _first_url(structured)
        if url:
            return [
                Card(
                    "checkout",
                    {
                        "url": url,
                        "order_id": structured.get("order_id"),
                        "simulated": bool(structured.get("simulated")) or "simulated" in url,
                        "total": _money(structured.get("total")),
                    },
                )
            ]
        return []
    if name in policy.shows_cart:
        card = cart_card(structured)
        return [Card("cart", card)] if card else []
    refills = subscriptions_card(structured)
    if refills is not None:
        return [Card("subscriptions", refills)]
    routine = _routine(structured)
    if routine:
        return [Card("routine", routine)]
    report = _report(structured)
    if report:
        return [Card("report", report)]
    products = products_in(structured, call.input)
    if products:
        return [Card("products", {"products": products[:MAX_CARDS], "total": structured.get("total")})]
    single = product_card(structured)
    if single:
        single["ingredients"] = (
            structured.get("ingredients") if isinstance(structured.get("ingredients"), list) else None
        )
        return [Card("product", single)]
    images = _images(structured)
    if images:
        return [Card("images", {"images": images})]
    if isinstance(structured.get("orders"), list):
        return [Card("orders", {"orders": [_order(o) for o in structured["orders"] if isinstance(o, dict)]})]
    order_id = structured.get("order_id") or structured.get("id")
    if isinstance(order_id, str) and order_id.startswith("ord_"):
        return [Card("order", _order(structured))]
    return []


def finished_summary(structured: Any) -> str:
    if not isinstance(structured, dict):
        return "done"
    products = products_in(structured)
    total = structured.get("total")
    if products:
        if isinstance(total, int) and total > len(products):
            return f"{len(products)} of {total} products"
        return f"{len(products)} product{'s' if len(products) != 1 else ''}"
    if isinstance(total, int) and total == 0:
        return "nothing matched"
    cart = cart_card(structured)
    if cart is not None:
        shown_total = (cart["total"] or {}).get("display")
        return f"{cart['count']} item{'s' if cart['count'] != 1 else ''} in the cart" + (
            f", {shown_total}" if shown_total else ""
        )
    url = _first_url(structured)
    if url and ("order_id" in structured or "checkout_url" in structured):
        return "checkout link ready"
    for key in ("report_id", "order_id", "id"):
        value = structured.get(key)
        if isinstance(value, str):
            status = structured.get("status")
            return value + (f" ({status})" if isinstance(status, str) else "")
    return "done"
