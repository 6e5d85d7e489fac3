"""Cart rules: quantities, stock and currency checked against the catalog, totals computed here in
integer minor units, and prices always the catalog's (a changed price is pointed out, never kept)."""

from __future__ import annotations

from dataclasses import dataclass

from shine_mcp.money import format_money
from shine_mcp.orders.errors import OrderError
from shine_mcp.store.carts import CartItem, CartSnapshot, locked_cart, read_cart
from shine_mcp.store.catalog import get_product, get_products
from shine_mcp.store.db import Database
from shine_mcp.store.tables import Product, utcnow

MAX_QUANTITY = 99
MAX_LINES = 50


@dataclass(frozen=True)
class PricedLine:
    product_id: str
    quantity: int
    added_price_minor: int  # what the cart showed when the item was added or last confirmed
    product: Product | None  # None: no longer in the catalog

    @property
    def unit_price_minor(self) -> int:
        return self.product.price_minor if self.product else self.added_price_minor

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity

    @property
    def price_changed(self) -> bool:
        return self.product is not None and self.product.price_minor != self.added_price_minor


@dataclass(frozen=True)
class PricedCart:
    snapshot: CartSnapshot | None
    lines: tuple[PricedLine, ...]

    @property
    def currency(self) -> str | None:
        return self.snapshot.currency if self.snapshot else None

    @property
    def subtotal_minor(self) -> int:
        return sum(line.line_total_minor for line in self.lines if line.product is not None)

    def problems(self) -> list[str]:
        """What stops checkout: products gone, not enough stock, a product now priced in another currency."""
        found: list[str] = []
        for line in self.lines:
            product = line.product
            if product is None:
                found.append(f"{line.product_id} is no longer sold; remove_from_cart removes it")
            elif product.currency != self.currency:
                found.append(
                    f"{product.name} is now priced in {product.currency}, the cart is in {self.currency}; "
                    "remove it to check out"
                )
            elif product.stock < line.quantity:
                left = f"only {product.stock} left" if product.stock > 0 else "out of stock"
                found.append(
                    f"{product.name}: {left}, the cart has {line.quantity}; update_cart_item fixes it"
                )
        return found

    def price_changes(self) -> list[str]:
        return [
            f"{line.product.name} now costs {format_money(line.product.price_minor, line.product.currency)} "
            f"(was {format_money(line.added_price_minor, line.product.currency)})"
            for line in self.lines
            if line.product is not None and line.price_changed
        ]


async def price_cart(db: Database, snapshot: CartSnapshot | None) -> PricedCart:
    if snapshot is None or snapshot.empty:
        return PricedCart(snapshot, ())
    products = await get_products(db, [item.product_id for item in snapshot.items])
    lines = tuple(
        PricedLine(item.product_id, item.quantity, item.unit_price_minor, products.get(item.product_id))
        for item in snapshot.items
    )
    return PricedCart(snapshot, lines)


async def view(db: Database, user_id: str) -> PricedCart:
    return await price_cart(db, await read_cart(db, user_id))


async def _product(db: Database, product_id: str) -> Product:
    product = await get_product(db, product_id.strip())
    if product is None:
        raise OrderError(f"no product with id '{product_id}'; search_products lists product ids")
    return product


def _check_stock(product: Product, quantity: int) -> None:
    if product.stock <= 0:
        raise OrderError(f"{product.name} is out of stock")
    if quantity > product.stock:
        raise OrderError(
            f"only {product.stock} of {product.name} in stock; you asked for {quantity} in total"
        )


async def add(db: Database, user_id: str, product_id: str, quantity: int) -> PricedCart:
    """Add `quantity` more of a product (at its current catalog price)."""
    product = await _product(db, product_id)
    async with locked_cart(db, user_id) as cart:
        if cart.items and cart.cart.currency and cart.cart.currency != product.currency:
            raise OrderError(
                f"{product.name} is priced in {product.currency} but your cart is in {cart.cart.currency}; "
                "one order takes one currency: check out or empty the cart first"
            )
        existing = cart.items.get(product.id)
        total = quantity + (existing.quantity if existing else 0)
        if total > MAX_QUANTITY:
            raise OrderError(f"at most {MAX_QUANTITY} of one product per order")
        _check_stock(product, total)
        if existing is None:
            if len(cart.items) >= MAX_LINES:
                raise OrderError(f"a cart holds at most {MAX_LINES} different products")
            existing = CartItem(
                cart_id=cart.cart.id,
                product_id=product.id,
                quantity=0,
                unit_price_minor=product.price_minor,
                currency=product.currency,
                added_at=utcnow(),
            )
            cart.session.add(existing)
            cart.items[product.id] = existing
        existing.quantity = total
        existing.unit_price_minor = product.price_minor  # adding again confirms today's price
        existing.currency = product.currency
        cart.cart.currency = product.currency
        snapshot = cart.snapshot()
    return await price_cart(db, snapshot)


async def set_quantity(db: Database, user_id: str, product_id: str, quantity: int) -> PricedCart:
    """Set one item's quantity; 0 removes it."""
    product_id = product_id.strip()
    async with locked_cart(db, user_id) as cart:
        item = cart.items.get(product_id)
        if item is None:
            raise OrderError(f"{product_id} is not in your cart; view_cart lists what is")
        if quantity == 0:
            await cart.session.delete(item)
            del cart.items[product_id]
        else:
            product = await get_product(db, product_id)
            if product is None:
                raise OrderError(f"{product_id} is no longer sold; remove it with remove_from_cart")
            _check_stock(product, quantity)
            item.quantity = quantity
        if not cart.items:
            cart.cart.currency = None
        snapshot = cart.snapshot()
    return await price_cart(db, snapshot)


async def confirm_prices(db: Database, user_id: str) -> None:
    """Take the catalog's current prices into the cart, after the shopper was told they changed."""
    async with locked_cart(db, user_id) as cart:
        products = await get_products(db, list(cart.items))
        for product_id, item in cart.items.items():
            product = products.get(product_id)
            if product is not None and product.currency == item.currency:
                item.unit_price_minor = product.price_minor
