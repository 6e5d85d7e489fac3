"""What people did with products, as weights per (person, product): the input of the collaborative signal.

Explicit ratings, product views, cart items and paid orders already live in their own tables; this
module reads them together, only for the caller and the people who touched the same products or
share the caller's skin type, so the cost follows the shop's activity around the caller, not its size.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from sqlalchemy import select, union
from sqlalchemy.engine import Connection

from shine_mcp.store.carts import Cart, CartItem
from shine_mcp.store.db import Database
from shine_mcp.store.orders import Order, OrderLine
from shine_mcp.store.profiles import ProductFeedback, Profile

# How much each kind of action says about liking a product, on a -1..1 scale.
VIEW_WEIGHT = 0.1
CART_WEIGHT = 0.5
BOUGHT_WEIGHT = 1.0
MAX_NEIGHBOURS = 300

_feedback = ProductFeedback.__table__  # type: ignore[attr-defined]
_profiles = Profile.__table__  # type: ignore[attr-defined]
_carts = Cart.__table__  # type: ignore[attr-defined]
_cart_items = CartItem.__table__  # type: ignore[attr-defined]
_orders = Order.__table__  # type: ignore[attr-defined]
_order_lines = OrderLine.__table__  # type: ignore[attr-defined]


def rating_weight(rating: int) -> float:
    """5 → 1, 4 → 0.5, 3 → 0, 2 → -0.5, 1 → -1."""
    return (rating - 3) / 2


@dataclass
class Signals:
    mine: dict[str, float] = field(default_factory=dict)
    others: dict[str, dict[str, float]] = field(default_factory=dict)  # user id → product id → weight
    profiles: dict[str, tuple[str | None, frozenset[str]]] = field(default_factory=dict)


def _weights(connection: Connection, user_ids: list[str]) -> dict[str, dict[str, float]]:
    found: dict[str, dict[str, float]] = defaultdict(dict)
    rated: set[tuple[str, str]] = set()

    def add(user: str, product: str, weight: float) -> None:
        if (user, product) in rated:  # what someone said outweighs what they did
            return
        found[user][product] = max(found[user].get(product, -1.0), weight)

    for chunk in _chunks(user_ids):
        for row in connection.execute(
            select(_feedback.c.user_id, _feedback.c.product_id, _feedback.c.kind, _feedback.c.value).where(
                _feedback.c.user_id.in_(chunk)
            )
        ):
            if row.kind == "rating":
                rated.add((row.user_id, row.product_id))
                found[row.user_id][row.product_id] = rating_weight(row.value)
        for row in connection.execute(
            select(_feedback.c.user_id, _feedback.c.product_id).where(
                _feedback.c.user_id.in_(chunk) & (_feedback.c.kind == "view")
            )
        ):
            add(row.user_id, row.product_id, VIEW_WEIGHT)
        for row in connection.execute(
            select(_carts.c.user_id, _cart_items.c.product_id)
            .join(_cart_items, _cart_items.c.cart_id == _carts.c.id)
            .where(_carts.c.user_id.in_(chunk))
        ):
            add(row.user_id, row.product_id, CART_WEIGHT)
        for row in connection.execute(
            select(_orders.c.user_id, _order_lines.c.product_id)
            .join(_order_lines, _order_lines.c.order_id == _orders.c.id)
            .where(_orders.c.user_id.in_(chunk) & _orders.c.paid_at.is_not(None))
        ):
            add(row.user_id, row.product_id, BOUGHT_WEIGHT)
    return found


def _chunks(items: list[str], size: int = 400) -> list[list[str]]:
    return [items[i : i + size] for i in range(0, len(items), size)] or [[]]


def _neighbours(
    connection: Connection, user_id: str, products: list[str], skin_type: str | None
) -> list[str]:
    """People who touched one of `products` or share the caller's skin type, most recent first."""
    queries = []
    if products:
        queries += [
            select(_feedback.c.user_id.label("uid")).where(_feedback.c.product_id.in_(products[:200])),
            select(_carts.c.user_id.label("uid"))
            .join(_cart_items, _cart_items.c.cart_id == _carts.c.id)
            .where(_cart_items.c.product_id.in_(products[:200])),
            select(_orders.c.user_id.label("uid"))
            .join(_order_lines, _order_lines.c.order_id == _orders.c.id)
            .where(_order_lines.c.product_id.in_(products[:200]) & _orders.c.paid_at.is_not(None)),
        ]
    if skin_type:
        queries.append(select(_profiles.c.user_id.label("uid")).where(_profiles.c.skin_type == skin_type))
    if not queries:
        return []
    rows = connection.execute(union(*queries).limit(MAX_NEIGHBOURS + 1))
    return [uid for (uid,) in rows if uid != user_id][:MAX_NEIGHBOURS]


async def collaborative_signals(db: Database, user_id: str, skin_type: str | None) -> Signals:
    def work(connection: Connection) -> Signals:
        mine = _weights(connection, [user_id]).get(user_id, {})
        liked = [p for p, w in mine.items() if w > 0]
        neighbours = _neighbours(connection, user_id, liked, skin_type)
        others = _weights(connection, neighbours) if neighbours else {}
        profiles: dict[str, tuple[str | None, frozenset[str]]] = {}
        for chunk in _chunks([*neighbours, user_id]):
            for row in connection.execute(
                select(_profiles.c.user_id, _profiles.c.skin_type, _profiles.c.concerns).where(
                    _profiles.c.user_id.in_(chunk)
                )
            ):
                profiles[row.user_id] = (row.skin_type, frozenset(row.concerns or []))
        return Signals(mine=mine, others={u: w for u, w in others.items() if w}, profiles=profiles)

    return await db.read(work)
