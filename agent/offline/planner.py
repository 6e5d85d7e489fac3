"""`OfflinePlanner`: the advisor without a language model. It implements the same `respond` seam as the
Anthropic model: from the conversation it reads the intent, picks the next tool step of that intent's plan
(`plans.json`), and once the steps are done writes the answer from the results. Deterministic."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from functools import cached_property
from typing import Any, Literal

from agent.model import Finish, Message, ModelEvent, TextChunk, ToolCall, ToolSpec
from agent.offline.context import Context, Seen, read_history
from agent.offline.intents import Intent
from agent.offline.naming import Resolution, resolve, tokens
from agent.offline.reading import ONE_LESS, Reading, book, image_query, read, read_earlier
from agent.offline.replies import (
    DO_YOU_MEAN,
    PROPOSAL,
    REFUND_QUESTION,
    WHICH_ONE,
    WHICH_ORDER,
    compose,
    refundable,
)
from agent.policy import Policy, load_policy

CALL_ID = "offline_t{turn}_s{step}"


def _schema_types(schema: dict[str, Any]) -> set[str]:
    types: set[str] = set()
    if isinstance(schema.get("type"), str):
        types.add(schema["type"])
    elif isinstance(schema.get("type"), list):
        types.update(str(t) for t in schema["type"])
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(option, dict):
            types |= _schema_types(option)
    return types - {"null"}


def _enum(schema: dict[str, Any]) -> list[Any] | None:
    if isinstance(schema.get("enum"), list):
        return list(schema["enum"])
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(option, dict) and (found := _enum(option)) is not None:
            return found
    return None


def _items(schema: dict[str, Any]) -> dict[str, Any]:
    if isinstance(schema.get("items"), dict):
        return dict(schema["items"])
    for option in schema.get("anyOf", []) + schema.get("oneOf", []):
        if isinstance(option, dict) and isinstance(option.get("items"), dict):
            return dict(option["items"])
    return {}


# The unit each money parameter takes, by the parameter's name. The planner's amounts are in the currency's
# major unit ("under $25" is 25). Tool input schemas carry no unit marker (no format, multipleOf or x-
# extension), and adding one to Shine's would change its public schema snapshot, so the unit is keyed on the
# name here, never on how a description is worded. Shine's own money parameters take major units and pass
# through; the minor-unit names follow Shine's `*_minor` convention (`Money.amount_minor`) and the common
# `*_cents`. A test keeps every price, budget or amount parameter of Shine's tools listed.
MONEY_UNITS: dict[str, Literal["major", "minor"]] = {
    "budget": "major",
    "max_price": "major",
    "amount": "major",
    "budget_minor": "minor",
    "max_price_minor": "minor",
    "amount_minor": "minor",
    "budget_cents": "minor",
    "max_price_cents": "minor",
    "amount_cents": "minor",
}
MINOR_PER_MAJOR = 100  # the slots do not know the currency; a minor-unit parameter is taken to be cents


def coerce(value: Any, schema: dict[str, Any], name: str) -> Any:
    """Fit a slot's value to the JSON schema of parameter `name`, or None when it does not fit."""
    if value is None or value == [] or value == "":
        return None
    types = _schema_types(schema)
    if "array" in types:
        values = value if isinstance(value, list) else [value]
        allowed = _enum(_items(schema))
        if allowed is not None:
            values = [v for v in values if v in allowed]
        maximum = schema.get("maxItems") or next(
            (o.get("maxItems") for o in schema.get("anyOf", []) if isinstance(o, dict) and o.get("maxItems")),
            None,
        )
        return values[: int(maximum)] if maximum and values else (values or None)
    if isinstance(value, list):
        value = ", ".join(str(v) for v in value)
    allowed = _enum(schema)
    if allowed is not None and value not in allowed:
        return None
    if isinstance(value, bool):
        return value if not types or "boolean" in types else None
    if isinstance(value, int | float):
        if MONEY_UNITS.get(name) == "minor":
            return int(round(value * MINOR_PER_MAJOR))
        if "integer" in types and "number" not in types:
            return int(round(value))
        if "number" in types or not types:
            return float(value)
        return str(value) if "string" in types else None
    return value if not types or "string" in types else None


# Intents whose next step needs the one product the shopper named; a search by its name finds it first.
REFERENCE_INTENTS = frozenset(
    {Intent.ADD_TO_CART, Intent.REMOVE_FROM_CART, Intent.PRODUCT_INFO, Intent.SAFETY}
)
CHANGES_CART = frozenset({Intent.ADD_TO_CART, Intent.REMOVE_FROM_CART})
_YES_WORDS = re.compile(
    r"^\W*(?:yes|yeah|yep|sure|ok(?:ay)?|please|go ahead|do it|confirm(?:ed)?)\b[\s,.!-]*", re.I
)

PASTED_MIN_NAMES = 3  # "Aqua, Glycerin, Retinol": fewer commas are a sentence, not a list
PASTED_MAX_NAME = 40  # average characters per name; prose between commas runs longer


class Slots:
    """Values for `$name` in plans.json, from the message, the conversation and this turn's results."""

    def __init__(
        self, reading: Reading, context: Context, policy: Policy, intent: Intent = Intent.UNKNOWN
    ) -> None:
        self.reading, self.context, self.policy, self.intent = reading, context, policy, intent
        self.asked: list[dict[str, Any]] = []  # the products the shopper may mean: ask which
        self.learned_orders: list[dict[str, Any]] | None = None  # list_orders in this turn
        self.learned_products: list[dict[str, Any]] = []
        self.learned_report: str | None = None
        self.each: Any = None  # the current value of an 'each' step
        self.learned_profile: dict[str, Any] = {}

    def learn(self, seen: Seen) -> None:
        from agent.cards import products_in

        if not seen.ok:
            return
        if seen.name == "get_profile" and isinstance(seen.structured, dict):
            self.learned_profile = seen.structured
        if seen.name == "search_products" and not self.reading.product_ids and not self.reading.ordinals:
            found = products_in(seen.structured)
            if self.intent not in REFERENCE_INTENTS:
                self.learned_products = found[:1] or self.learned_products
            else:
                self.learn_reference(found)
        if seen.name == "list_orders" and isinstance(seen.structured, dict):
            orders = seen.structured.get("orders")
            self.learned_orders = (
                [o for o in orders if isinstance(o, dict)] if isinstance(orders, list) else []
            )
        if isinstance(seen.structured, dict):
            rid = seen.structured.get("report_id") or seen.structured.get("id")
            if isinstance(rid, str) and rid.startswith("rep_"):
                self.learned_report = rid

    def name_words(self) -> list[str]:
        return tokens(self.reading.name_query)

    def learn_reference(self, found: list[dict[str, Any]]) -> None:
        """The product a catalog search by the shopper's words found: the one its name matches, else (to
        read about, never to buy) the catalog's best match; several as good a match: ask which."""
        named = resolve(self.name_words(), found)
        changes = self.intent in CHANGES_CART
        if named.meant is not None and (named.covered or not changes):
            self.learned_products = [named.meant]
        elif named.ambiguous:
            self.asked = named.candidates[:4]
        elif named.meant is not None:
            self.asked = [named.meant]  # only some of the words match: make sure before changing the cart
        elif found and not changes:
            self.learned_products = found[:1]
        elif found:
            self.asked = found[:3]

    def confirmed_guess(self) -> str | None:
        """ "Yes" to "Do you mean the …?": the one product the previous message's words came closest to."""
        if not self.context.earlier or not self.policy.is_confirmation(self.reading.text):
            return None
        previous = self.context.earlier[-1]
        if not any(DO_YOU_MEAN in said for said in previous.said):
            return None
        named = resolve(tokens(read(previous.request).name_query), self.context.shown_products())
        return str(named.meant["id"]) if named.meant is not None else None

    def in_cart(self) -> Resolution:
        """The cart line the message names ("remove the sun serum"), from the cart shown last."""
        cart = self.context.cart(self.policy.shows_cart) or {}
        lines = [
            {**item, "id": item.get("product_id")}
            for item in cart.get("items", [])
            if isinstance(item, dict) and item.get("product_id")
        ]
        return resolve(self.name_words(), lines)

    def named_on_screen(self) -> Resolution:
        """The products shown last that the message names by every word it uses for a name."""
        shown = self.context.shown_products()
        named = resolve(self.name_words(), shown)
        return named if named.covered else Resolution()

    def pasted(self) -> str | None:
        """An ingredient list pasted into the message ("is this safe: Aqua, Retinol, …"), if any."""
        text = self.reading.text
        tail = text.rsplit(":", 1)[1] if ":" in text else text
        parts = [p.strip(" .;\n") for p in tail.split(",")]
        names = [p for p in parts if p]
        if len(names) >= PASTED_MIN_NAMES and sum(len(n) for n in names) / len(names) <= PASTED_MAX_NAME:
            return ", ".join(names)
        return None

    def refers_back(self) -> bool:
        return bool(re.search(r"\b(it|this|that|them|these|those)\b", self.reading.text.lower()))

    def earlier_check(self) -> dict[str, Any]:
        """The arguments of the last ingredient check, for a follow-up ("I'm pregnant, can I use it?")."""
        for seen in reversed(self.context.all_calls()):
            if seen.ok and seen.name == "check_ingredients":
                return seen.input
        return {}

    def products(self) -> list[str]:
        r = self.reading
        if r.product_ids:
            return r.product_ids
        guess = self.confirmed_guess()
        if guess:
            return [guess]
        if self.intent == Intent.SUBSCRIBE:
            picked = self.routine_pick()
            if picked:
                return [picked]
        if self.intent in (Intent.REMOVE_FROM_CART, Intent.CHANGE_QUANTITY) and self.name_words():
            in_cart = self.in_cart()
            if in_cart.meant is not None:
                return [in_cart.meant["id"]]
            if in_cart.ambiguous:
                self.asked = in_cart.candidates[:4]
                return []
        shown = self.context.shown_products()
        if r.ordinals and shown:
            return [shown[i]["id"] for i in r.ordinals if -len(shown) <= i < len(shown)]
        if self.pasted():  # the question is about the pasted list, not what was shown before
            return []
        opened = self.opened_last_turn()
        if len(opened) > 1 and re.search(r"\b(them|both|together)\b", r.text.lower()):
            return opened  # the products just compared
        if shown:
            named = self.named_on_screen()
            if named.meant is not None:
                return [named.meant["id"]]
            if named.ambiguous:
                self.asked = named.candidates[:4]
                return []
            if re.search(r"\b(them|all of them|all three|both)\b", r.text.lower()):
                return [p["id"] for p in shown]
        if self.learned_products:
            return [p["id"] for p in self.learned_products]
        routine = self.context.routine_products()
        if routine and self.refers_back():  # "is it safe?" right after a routine: the whole routine
            return routine
        # "it" after a product was opened in the previous turn is that product, even with a list on screen.
        if opened and re.search(r"\b(it|this|that)\b", r.text.lower()):
            return opened[-1:]
        if shown and re.search(r"\b(it|this|that|this one|that one)\b", r.text.lower()):
            return [shown[0]["id"]] if len(shown) == 1 else []
        return []

    def cart_line(self) -> dict[str, Any] | None:
        """The line of the cart shown last (this turn's included) for the product and variant meant."""
        product_id, variant_id = self.value("product_id"), self.value("variant_id")
        cart = self.context.cart(self.policy.shows_cart) or {}
        lines = [
            item
            for item in cart.get("items", [])
            if isinstance(item, dict) and item.get("product_id") == product_id and product_id
        ]
        if variant_id:
            lines = [item for item in lines if item.get("variant_id") == variant_id]
        return lines[0] if len(lines) == 1 else None

    def new_quantity(self) -> int | None:
        """ "just one …", "change it to 2": that number; "remove one …", "one less": the line's quantity less
        one (0 takes the line out), known from the cart shown last."""
        text = self.reading.text.lower()
        said = re.search(r"\b(?:just|only|to)\s+(one|two|three|four|five|\d{1,2})\b", text)
        if said and not ONE_LESS.search(text):
            word = said.group(1)
            return int(word) if word.isdigit() else ["one", "two", "three", "four", "five"].index(word) + 1
        line = self.cart_line()
        if line is None or not isinstance(line.get("quantity"), int):
            return None
        return max(0, int(line["quantity"]) - 1)

    def routine_pick(self) -> str | None:
        """ "Subscribe to the serum" right after a routine: its product of that category, or named so."""
        cards = self.context.routine_cards()
        if self.reading.category:
            same = [c for c in cards if c.get("category") == self.reading.category]
            if len(same) == 1:
                return str(same[0]["id"])
            if same:  # a morning and an evening serum: ask which
                self.asked = same[:4]
                return None
        named = resolve(self.name_words(), cards)
        return str(named.meant["id"]) if named.meant is not None and named.covered else None

    def subscribe_proposed(self) -> dict[str, Any] | None:
        """The arguments of the subscription the previous answer described and asked about (the tool's
        own "Nothing was changed yet" answer to a call without confirm)."""
        for earlier in self.context.earlier[-1:]:
            for seen in reversed(earlier.calls):
                if seen.name == "subscribe" and not seen.ok and not seen.input.get("confirm"):
                    return seen.input if PROPOSAL in seen.text else None
        return None

    def proposed(self, tool: str) -> dict[str, Any] | None:
        """The arguments of the `tool` call the previous answer described and asked about (a confirm-first
        tool's own "Nothing was changed yet" answer to a call without confirm)."""
        for earlier in self.context.earlier[-1:]:
            for seen in reversed(earlier.calls):
                if seen.name == tool and not seen.ok and not seen.input.get("confirm"):
                    return seen.input if PROPOSAL in seen.text else None
        return None

    def subscription_id(self) -> str | None:
        """The refills meant: named by id (a card's button says it), else the only live one listed last."""
        named = re.search(r"\bsub_[0-9a-f]{20}\b", self.reading.text)
        if named:
            return named.group(0)
        for seen in reversed(self.context.all_calls()):
            if seen.ok and seen.name == "list_subscriptions" and isinstance(seen.structured, dict):
                live = [
                    s
                    for s in seen.structured.get("subscriptions") or []
                    if isinstance(s, dict) and s.get("status") != "canceled"
                ]
                return str(live[0]["subscription_id"]) if len(live) == 1 else None
        return None

    def said_weeks(self) -> int | None:
        """ "every 8 weeks" (or "every 2 months", as 8 weeks)."""
        said = re.search(r"\bevery\s+(\d{1,2})\s*(weeks?|months?)\b", self.reading.text.lower())
        if not said:
            return None
        return int(said.group(1)) * (4 if said.group(2).startswith("month") else 1)

    def opened_last_turn(self) -> list[str]:
        """The products opened (get_product) in the previous turn, in order: one read, or a comparison."""
        for earlier in self.context.earlier[-1:]:
            return [
                str(c.structured.get("id"))
                for c in earlier.calls
                if c.ok and c.name == "get_product" and isinstance(c.structured, dict)
            ]
        return []

    def compare_ids(self) -> list[str]:
        """Two or more products to compare: named by id, position or name, plus the one opened last turn
        when the message says "it"; failing those, the first two on screen."""
        r = self.reading
        shown = self.context.shown_products()
        found = list(r.product_ids)
        found += [shown[i]["id"] for i in r.ordinals if shown and -len(shown) <= i < len(shown)]
        found += _named(r.text, shown) if shown else []
        if re.search(r"\b(it|this|that)\b", r.text.lower()):
            found[:0] = self.opened_last_turn()[-1:]
        unique = list(dict.fromkeys(found))
        if len(unique) < 2 and len(shown) >= 2 and re.search(r"\b(them|these|those|both)\b", r.text.lower()):
            unique = [p["id"] for p in shown[:2]]
        return unique[:4]

    def report_skin_type(self) -> str | None:
        """The skin type the latest skin report found (when the shopper did not say theirs)."""
        for seen in reversed(self.context.all_calls()):
            structured = seen.structured if seen.ok and isinstance(seen.structured, dict) else {}
            if str(structured.get("report_id", "")).startswith("rep_"):
                found = structured.get("skin_type")
                value = found.get("value") if isinstance(found, dict) else found
                return value if isinstance(value, str) else None
        return None

    def report_ids(self) -> list[str]:
        ids = self.context.report_ids()
        if self.learned_report and self.learned_report not in ids:
            ids.append(self.learned_report)
        return self.reading.report_ids or ids

    def value(self, name: str) -> Any:
        r = self.reading
        if name == "product_id":
            found = self.products()
            return found[0] if found else None
        if name == "product_ids":
            found = self.products()
            if not found and not self.pasted() and self.refers_back():
                return self.earlier_check().get("product_ids")
            return found or None
        if name == "each":
            return self.each
        if name == "compare_ids":
            found = self.compare_ids()
            return found if len(found) >= 2 else None
        if name == "variant_id":
            return r.variant_ids[0] if r.variant_ids else None
        if name == "new_quantity":
            return self.new_quantity()
        if name == "item_id":
            cart = self.context.cart(self.policy.shows_cart)
            wanted = self.value("product_id")
            for item in (cart or {}).get("items", []):
                if item.get("product_id") == wanted and item.get("item_id"):
                    return item["item_id"]
            return None
        if name == "report_id":
            ids = self.report_ids()
            return ids[-1] if ids else None
        if name == "previous_report_id":
            ids = self.report_ids()
            return ids[-2] if len(ids) > 1 else None
        if name == "upload":
            uploads = r.uploads or self.context.uploads()
            return uploads[-1] if uploads else None
        if name == "order_id":
            return r.order_id or self.context.order_id()
        if name == "style":
            return (
                "complete"
                if re.search(r"\b(complete|full|thorough|detailed)\b", r.text.lower())
                else "minimal"
            )
        if name == "image_query":
            return image_query(r.text)
        if name == "pregnant_or_nursing":
            # Only ever adds cautions; a tool without the argument never receives it (None is dropped).
            return (
                True
                if re.search(r"\b(pregnan\w*|breastfeed\w*|nursing|expecting)\b", r.text.lower())
                else None
            )
        if name == "sensitive_skin":
            return True if re.search(r"\bsensitive\b", r.text.lower()) else None
        if name == "ingredients_text":
            pasted = self.pasted()
            if pasted:
                return pasted
            if not self.products() and self.refers_back():
                return self.earlier_check().get("ingredients_text")
            without_ids = re.sub(r"\bprd_\w+", " ", r.text.lower())  # product ids are not ingredients
            match = re.search(r"\b(?:with|and|alongside)\s+([a-z][a-z0-9 ,-]{2,80})", without_ids)
            text = match.group(1).strip() if match and not self.reading.ordinals else None
            return text or (", ".join(r.avoid) if r.avoid else None)
        if name.startswith("proposed_routine_"):
            return (self.proposed("subscribe_to_routine") or {}).get(name.removeprefix("proposed_routine_"))
        if name == "proposed_cancel_subscription_id":
            return (self.proposed("cancel_subscription") or {}).get("subscription_id")
        if name.startswith("proposed_"):
            return (self.subscribe_proposed() or {}).get(name.removeprefix("proposed_"))
        if name == "routine_product_ids":
            return [str(card["id"]) for card in self.context.routine_cards() if card.get("id")] or None
        if name == "said_weeks":
            return self.said_weeks()
        if name == "subscription_id":
            return self.subscription_id()
        if name == "refund_order_id":
            return self.refund_order_id()
        if name == "refund_reason":
            return self.refund_reason()
        if name == "keep_photo":
            return r.keep_photo
        if name == "skin_type":
            return r.skin_type or self.report_skin_type()
        if name == "remembered_skin_type":
            return r.skin_type or self.report_skin_type() or self.remembered("skin_type")
        if name in ("remembered_concerns", "remembered_budget"):
            said = getattr(r, name.removeprefix("remembered_"))
            return said or self.remembered(name.removeprefix("remembered_"))
        if name in (
            "concerns_to_save",
            "avoid_to_save",
        ):  # added to what the profile holds, never replacing it
            field = "concerns" if name == "concerns_to_save" else "avoid"
            said = [w for reading in [*self.said_before, r] for w in getattr(reading, field)]
            held = self.learned_profile.get("concerns" if field == "concerns" else "avoid_ingredients") or []
            merged = list(dict.fromkeys([*held, *said]))
            return merged if said else None
        if name == "remembered_avoid":  # an allergy said once holds for the whole chat
            words = [w for reading in [*self.said_before, r] for w in reading.avoid]
            return list(dict.fromkeys(words)) or None
        return getattr(r, name, None)

    def remembered(self, name: str) -> Any:
        """What the shopper said earlier in this chat (their skin type, concerns, budget), latest first:
        "oily skin, acne, $40" then "build me a routine" means that routine."""
        for reading in reversed(self.said_before):
            value = getattr(reading, name, None)
            if value:  # a copy of a list: the readings of earlier messages are shared (`read_earlier`)
                return list(value) if isinstance(value, list) else value
        return None

    @cached_property
    def said_before(self) -> list[Reading]:
        """The shopper's earlier messages, each read once (and kept across replies: `read_earlier`)."""
        return [read_earlier(turn.request) for turn in self.context.earlier]

    def condition(self, name: str | None, turn: list[Seen]) -> bool:
        if name is None:
            return True
        if name == "cart_line_unknown":
            return self.new_quantity() is None
        if name == "personal":
            return (self.reading.personal or self.value("report_id") is not None) and not self.reading.query
        if name == "no_routine":
            return not any(c.ok and c.name == "build_routine" for c in turn)
        if name == "no_product":
            return not self.products()
        if name == "no_product_but_words":
            return (
                not self.products()
                and not self.asked
                and not self.policy.is_confirmation(self.reading.text)  # "yes" names nothing
                and not self.pasted()
                and not (self.refers_back() and self.earlier_check())
                and bool(self.reading.name_query)
            )
        if name == "similar_to_me":
            asks = re.search(r"\b(similar|like mine|my (look|skin|report|tone))\b", self.reading.text.lower())
            return bool(asks) and self.value("report_id") is not None
        if name == "cart_confirmed":
            return self.context.cart_shown_last_turn(self.policy.shows_cart, self.policy.checkout_tools)
        if name == "asks_one_report":
            one = re.search(
                r"\b(last|latest|previous)\b(?! (skin )?(reports|analyses))", self.reading.text.lower()
            )
            return bool(self.reading.report_ids or one) and self.value("report_id") is not None
        if name == "has_order_id":
            plural = re.search(r"\borders\b", self.reading.text.lower())
            return self.reading.order_id is not None or (not plural and self.value("order_id") is not None)
        if name == "subscribe_confirmed":
            return self.subscribe_proposed() is not None and self.policy.is_confirmation(self.reading.text)
        if name == "routine_subscribe_confirmed":
            proposal = self.proposed("subscribe_to_routine")
            return proposal is not None and self.policy.is_confirmation(self.reading.text)
        if name == "cancel_refill_confirmed":
            proposal = self.proposed("cancel_subscription")
            return proposal is not None and self.policy.is_confirmation(self.reading.text)
        if name == "refund_confirmed":
            return self.refund_proposed() is not None and self.policy.is_confirmation(self.reading.text)
        if name == "refund_order_known":
            return self.value("refund_order_id") is not None
        if name == "refund_order_learned":
            return (
                self.learned_orders is not None
                and self.value("refund_order_id") is not None
                and not any(c.name == "get_order" for c in turn)
            )
        raise ValueError(f"plans.json uses an unknown condition {name!r}")

    def refund_proposed(self) -> str | None:
        """The order the previous answer offered to ask a refund for ("Shall I ask … for order ord_…?")."""
        for earlier in self.context.earlier[-1:]:
            if any(REFUND_QUESTION in said for said in earlier.said):
                for seen in reversed(earlier.calls):
                    if seen.ok and seen.name == "get_order" and isinstance(seen.structured, dict):
                        oid = seen.structured.get("order_id")
                        return oid if isinstance(oid, str) else None
        return None

    def refund_choices(self) -> list[dict[str, Any]]:
        """The orders the previous answer listed to choose from ("Which order?")."""
        for earlier in self.context.earlier[-1:]:
            if any(WHICH_ORDER in said for said in earlier.said):
                for seen in reversed(earlier.calls):
                    if seen.ok and seen.name == "list_orders" and isinstance(seen.structured, dict):
                        return refundable(seen.structured.get("orders"))
        return []

    def refund_order_id(self) -> str | None:
        r = self.reading
        if r.order_id:
            return r.order_id
        proposed = self.refund_proposed()
        if proposed and self.policy.is_confirmation(r.text):
            return proposed
        choices = self.refund_choices()
        if choices and r.ordinals:
            picked = [choices[i] for i in r.ordinals if -len(choices) <= i < len(choices)]
            return str(picked[0].get("order_id")) if picked else None
        if self.learned_orders is not None:
            open_ = refundable(self.learned_orders)
            return str(open_[0].get("order_id")) if len(open_) == 1 else None
        if re.search(r"\b(it|this|that|this order|that order)\b", r.text.lower()):
            return self.context.order_id()  # the order just looked at
        return None

    def refund_reason(self) -> str:
        """Why, in the shopper's words: what they add to their yes, else the message that asked."""
        said = _YES_WORDS.sub("", self.reading.text).strip()
        if len(said) >= 8 and not self.policy.is_confirmation(said):
            return said[:500]
        for earlier in reversed(self.context.earlier):
            if read(earlier.request).intent == Intent.REFUND:
                return earlier.request.strip()[:500]
        return self.reading.text.strip()[:500] or "the shopper asked for a refund"


def _named(text: str, shown: list[dict[str, Any]]) -> list[str]:
    """Products the shopper names by a distinctive word of their brand or name."""
    words = set(re.findall(r"[a-z0-9]{4,}", text.lower()))
    hits = []
    for product in shown:
        label = f"{product.get('brand') or ''} {product.get('name') or ''}".lower()
        own = set(re.findall(r"[a-z0-9]{4,}", label)) - {
            "cream",
            "serum",
            "cleanser",
            "moisturiser",
            "moisturizer",
            "sunscreen",
            "toner",
            "skin",
        }
        if words & own:
            hits.append(product["id"])
    return hits if len(hits) == 1 else []


class OfflinePlanner:
    kind: Literal["offline"] = "offline"
    name = "offline"

    def __init__(self, policy: Policy | None = None) -> None:
        self.policy = policy or load_policy()

    def _intent(self, reading: Reading, context: Context) -> Intent:
        intent = reading.intent
        if context.earlier:
            follow_up = self._follow_up(reading, context)
            if follow_up is not None:
                return follow_up
        cart_seen = context.cart_shown_last_turn(self.policy.shows_cart, self.policy.checkout_tools)
        if (
            intent in (Intent.UNKNOWN, Intent.GREETING)
            and cart_seen
            and self.policy.is_confirmation(reading.text)
        ):
            return Intent.CHECKOUT
        if intent == Intent.UNKNOWN and cart_seen and self.policy.is_refusal(reading.text):
            return Intent.UNKNOWN
        if intent == Intent.UNKNOWN and (
            reading.personal or reading.category or reading.budget or reading.query
        ):
            return Intent.FIND_PRODUCTS
        return intent

    def _follow_up(self, reading: Reading, context: Context) -> Intent | None:
        """An answer to the question the previous reply asked: which product, which order, or yes."""
        previous = context.earlier[-1]
        asked = " ".join(previous.said)
        slots = Slots(reading, context, self.policy)
        answered = self.policy.is_confirmation(reading.text) or self.policy.is_refusal(reading.text)
        unasked = (Intent.UNKNOWN, Intent.GREETING)  # "yes", "no", "hi": no request of their own
        if answered and reading.intent in (*unasked, Intent.REFUND) and slots.refund_proposed():
            return Intent.REFUND if self.policy.is_confirmation(reading.text) else Intent.UNKNOWN
        if answered and reading.intent in (*unasked, Intent.SUBSCRIBE) and slots.subscribe_proposed():
            return Intent.SUBSCRIBE if self.policy.is_confirmation(reading.text) else Intent.UNKNOWN
        for tool, intent in (
            ("subscribe_to_routine", Intent.SUBSCRIBE_ROUTINE),
            ("cancel_subscription", Intent.CANCEL_REFILL),
        ):
            if answered and reading.intent in (*unasked, intent) and slots.proposed(tool):
                return intent if self.policy.is_confirmation(reading.text) else Intent.UNKNOWN
        if (
            WHICH_ORDER in asked
            and (reading.ordinals or reading.order_id)
            and reading.intent in (Intent.UNKNOWN, Intent.ORDER_STATUS, Intent.REFUND)
        ):
            return Intent.REFUND
        short = len(reading.text.split()) <= 8
        which = WHICH_ONE in asked or DO_YOU_MEAN in asked
        if which and short and reading.intent in (Intent.UNKNOWN, Intent.FIND_PRODUCTS, Intent.GREETING):
            before = Context(context.turns[:-1])
            return self._intent(read(before.current.request), before)
        return None

    def _fill(
        self, option: dict[str, Any], spec: ToolSpec, slots: Slots
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """The arguments for one option, or None and the slots that were missing for required parameters."""
        properties = spec.properties()
        arguments: dict[str, Any] = {}
        for param, template in option.get("args", {}).items():
            if param not in properties:
                continue
            raw = (
                slots.value(template[1:])
                if isinstance(template, str) and template.startswith("$")
                else template
            )
            value = coerce(raw, properties[param], param)
            if value is not None:
                arguments[param] = value
        missing = [p for p in spec.required() if p not in arguments]
        wanted_one = [p for p in option.get("requires_any", []) if p in properties]
        if wanted_one and not any(p in arguments for p in wanted_one):
            missing.append(wanted_one[0])
        if missing:
            names = [str(option["args"].get(p, p)).lstrip("$") for p in missing]
            return None, names
        return arguments, []

    async def respond(
        self, system: str, messages: Sequence[Message], tools: Sequence[ToolSpec]
    ) -> AsyncIterator[ModelEvent]:
        context = read_history(list(messages))
        reading = read(context.current.request)
        intent = self._intent(reading, context)
        specs = {t.name: t for t in tools}
        slots = Slots(reading, context, self.policy, intent)
        turn = len(context.turns)
        plan = book().plans[intent]
        missing: list[str] = []
        needs: list[str] = []

        for index, step in enumerate(plan):
            prefix = CALL_ID.format(turn=turn, step=index)
            done = [c for c in context.current.calls if c.id == prefix or c.id.startswith(prefix + "_")]
            if done:
                for seen in done:
                    slots.learn(seen)
                if step.get("stop_on_error") and not all(c.ok for c in done):
                    break
                continue
            if not slots.condition(step.get("if"), context.current.calls):
                continue
            calls: list[ToolCall] = []
            step_needs: list[str] = []
            if step.get("each"):
                values = slots.value(step["each"]) or []
                option = step["options"][0]
                spec = specs.get(option["tool"])
                if spec is None:
                    missing.append(step["missing"])
                    break
                if not values:
                    needs.append(step["each"])
                    break
                for n, value in enumerate(values):
                    slots.each = value
                    arguments, _lacking = self._fill(option, spec, slots)
                    if arguments is not None:
                        calls.append(ToolCall(f"{prefix}_{n}", spec.name, arguments))
                for call in calls:
                    yield call
                yield Finish("tool_use")
                return
            for option in step["options"]:
                spec = specs.get(option["tool"])
                if spec is None or not slots.condition(option.get("if"), context.current.calls):
                    continue
                arguments, lacking = self._fill(option, spec, slots)
                if arguments is None:
                    step_needs += lacking
                    continue
                call_id = f"{prefix}_{len(calls)}" if step.get("together") else prefix
                calls.append(ToolCall(call_id, spec.name, arguments))
                if not step.get("together"):
                    break
            if calls:
                for call in calls:
                    yield call
                yield Finish("tool_use")
                return
            if step_needs:
                needs += step_needs
                if not step.get("optional"):
                    break
            elif not step.get("optional") and step.get("missing"):
                tools_named = {o["tool"] for o in step["options"]}
                if not tools_named & set(specs):
                    missing.append(step["missing"])
                    break

        text = compose(intent, reading, context, slots, specs, missing, needs, self.policy)
        for chunk in re.split(r"(?<=\n)", text):
            if chunk:
                yield TextChunk(chunk)
        yield Finish("end_turn")
