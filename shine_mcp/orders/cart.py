"""Cart rules: quantities, stock and currency checked against the catalog, totals computed here in
integer minor units, and prices always the catalog's (a changed price is pointed out, never kept)."""

from __future__ import annotations

from dataclasses import dataclass

from shine_mcp.clock import utcnow
from shine_mcp.money import format_money
from shine_mcp.orders.errors import OrderError
from shine_mcp.store.carts import CartItem, CartSnapshot, LockedCart, change_cart, read_cart
from shine_mcp.store.catalog import get_product, get_products, get_variants, get_variants_by_id
from shine_mcp.store.db import Database
from shine_mcp.store.tables import Product, ProductVariant

MAX_QUANTITY = 99
MAX_LINES = 50


def variant_name(product: Product, variant: ProductVariant | None) -> str:
    """The product's name with the variant's title when it has one: "Gel Cream – Green / S"."""
    return f"{product.name} – {variant.title}" if variant is not None and variant.title else product.name


@dataclass(frozen=True)
class PricedLine:
    product_id: str
    variant_id: str
    quantity: int
    added_price_minor: int  # what the cart showed when the item was added or last confirmed
    product: Product | None  # None: no longer in the catalog
    variant: ProductVariant | None = None  # None: the variant is no longer sold

    @property
    def sold(self) -> bool:
        return self.product is not None and self.variant is not None

    @property
    def name(self) -> str:
        return variant_name(self.product, self.variant) if self.product else "(no longer sold)"

    @property
    def unit_price_minor(self) -> int:
        return self.variant.price_minor if self.variant else self.added_price_minor

    @property
    def line_total_minor(self) -> int:
        return self.unit_price_minor * self.quantity

    @property
    def price_changed(self) -> bool:
        return self.variant is not None and self.variant.price_minor != self.added_price_minor


@dataclass(frozen=True)
class PricedCart:
    snapshot: CartSnapshot | None
    lines: tuple[PricedLine, ...]

    @property
    def currency(self) -> str | None:
        return self.snapshot.currency if self.snapshot else None

    @property
    def subtotal_minor(self) -> int:
        return sum(line.line_total_minor for line in self.lines if line.sold)

    def problems(self) -> list[str]:
        """What stops checkout: products gone, not enough stock, a product now priced in another currency."""
        found: list[str] = []
        for line in self.lines:
            variant = line.variant
            if line.product is None or variant is None:
                gone = line.name if line.product is None else f"this version of {line.product.name}"
                found.append(f"{gone} ({line.product_id}) is no longer sold; remove_from_cart removes it")
            elif variant.currency != self.currency:
                found.append(
                    f"{line.name} is now priced in {variant.currency}, the cart is in {self.currency}; "
                    "remove it to check out"
                )
            elif variant.stock < line.quantity:
                left = f"only {variant.stock} left" if variant.stock > 0 else "out of stock"
                found.append(f"{line.name}: {left}, the cart has {line.quantity}; update_cart_item fixes it")
        return found

    def price_changes(self) -> list[str]:
        return [
            f"{line.name} now costs {format_money(line.variant.price_minor, line.variant.currency)} "
            f"(was {format_money(line.added_price_minor, line.variant.currency)})"
            for line in self.lines
            if line.variant is not None and line.price_changed
        ]


async def price_cart(db: Database, snapshot: CartSnapshot | None) -> PricedCart:
    if snapshot is None or snapshot.empty:
        return PricedCart(snapshot, ())
    products = await get_products(db, [item.product_id for item in snapshot.items])
    variants = await get_variants_by_id(db, [item.variant_id for item in snapshot.items])
    lines = tuple(
        PricedLine(
            item.product_id,
            item.variant_id,
            item.quantity,
            item.unit_price_minor,
            products.get(item.product_id),
            variants.get(item.variant_id),
        )
        for item in snapshot.items
    )
    return PricedCart(snapshot, lines)


async def view(db: Database, user_id: str) -> PricedCart:
    return await price_cart(db, await read_cart(db, user_id))


@dataclass(frozen=True)
class Added:
    cart: PricedCart
    product: Product
    variant: ProductVariant
    chosen: str | None  # when no variant was named and there was a choice: which one and why


async def _product(db: Database, product_id: str) -> Product:
    product = await get_product(db, product_id.strip())
    if product is None:
        raise OrderError(f"no product with id '{product_id}'; search_products lists product ids")
    return product


def _describe(variant: ProductVariant) -> str:
    return f"{variant.title or 'its only version'} ({variant.id})"


SHOWN_CHOICES = 5  # others in stock named in the notice; get_product lists them all


async def pick_variant(
    db: Database, product: Product, variant_id: str | None
) -> tuple[ProductVariant, str | None]:
    """The variant asked for, else the only one, else the first in stock (in the shop's order); with the
    sentence saying which was chosen when there was a choice."""
    variants = await get_variants(db, product.id)
    if variant_id is not None:
        found = next((v for v in variants if v.id == variant_id.strip()), None)
        if found is None:
            listed = ", ".join(_describe(v) for v in variants) or "none"
            raise OrderError(f"{product.name} has no variant '{variant_id}'; its variants are: {listed}")
        return found, None
    if not variants:
        raise OrderError(f"{product.name} is not sold at the moment")
    if len(variants) == 1:
        return variants[0], None
    in_stock = [v for v in variants if v.stock > 0]
    if not in_stock:
        raise OrderError(f"{product.name} is out of stock in every version")
    chosen, others = in_stock[0], in_stock[1:]
    sentence = (
        f"{product.name} comes in {len(variants)} versions; this added {_describe(chosen)}, the first in "
        "stock. To choose another, pass its variant_id"
    )
    if others:
        named = ", ".join(_describe(v) for v in others[:SHOWN_CHOICES])
        more = (
            f" and {len(others) - SHOWN_CHOICES} more (get_product lists them)"
            if len(others) > SHOWN_CHOICES
            else ""
        )
        sentence += f"; also in stock: {named}{more}"
    return chosen, sentence


def _check_stock(name: str, variant: ProductVariant, quantity: int) -> None:
    if variant.stock <= 0:
        raise OrderError(f"{name} is out of stock")
    if quantity > variant.stock:
        raise OrderError(f"only {variant.stock} of {name} in stock; you asked for {quantity} in total")


async def add(
    db: Database, user_id: str, product_id: str, quantity: int, variant_id: str | None = None
) -> Added:
    """Add `quantity` more of a product's variant (at its current catalog price); without `variant_id`,
    the only variant or the first in stock."""
    product = await _product(db, product_id)
    variant, chosen = await pick_variant(db, product, variant_id)
    name = variant_name(product, variant)

    def adding(cart: LockedCart) -> CartSnapshot:
        if cart.items and cart.cart.currency and cart.cart.currency != variant.currency:
            raise OrderError(
                f"{name} is priced in {variant.currency} but your cart is in {cart.cart.currency}; "
                "one order takes one currency: check out or empty the cart first"
            )
        existing = cart.items.get(variant.id)
        total = quantity + (existing.quantity if existing else 0)
        if total > MAX_QUANTITY:
            raise OrderError(f"at most {MAX_QUANTITY} of one product per order")
        _check_stock(name, variant, total)
        if existing is None:
            if len(cart.items) >= MAX_LINES:
                raise OrderError(f"a cart holds at most {MAX_LINES} different products")
            existing = CartItem(
                cart_id=cart.cart.id,
                variant_id=variant.id,
                product_id=product.id,
                quantity=0,
                unit_price_minor=variant.price_minor,
                currency=variant.currency,
                added_at=utcnow(),
            )
            cart.items[variant.id] = existing
        existing.quantity = total
        existing.unit_price_minor = variant.price_minor  # adding again confirms today's price
        existing.currency = variant.currency
        cart.cart.currency = variant.currency
        return cart.snapshot()

    snapshot = await change_cart(db, user_id, adding)
    return Added(await price_cart(db, snapshot), product, variant, chosen)


def _item_of(items: dict[str, CartItem], product_id: str, variant_id: str | None) -> CartItem:
    """The cart line meant: by variant id, or the product's one line."""
    if variant_id is not None:
        item = items.get(variant_id.strip())
        if item is None or item.product_id != product_id:
            raise OrderError(f"that version of {product_id} is not in your cart; view_cart lists what is")
        return item
    mine = [item for item in items.values() if item.product_id == product_id]
    if not mine:
        raise OrderError(f"{product_id} is not in your cart; view_cart lists what is")
    if len(mine) > 1:
        ids = ", ".join(sorted(item.variant_id for item in mine))
        raise OrderError(
            f"your cart has {len(mine)} versions of {product_id}; say which with variant_id ({ids})"
        )
    return mine[0]


async def set_quantity(
    db: Database, user_id: str, product_id: str, quantity: int, variant_id: str | None = None
) -> PricedCart:
    """Set one line's quantity; 0 removes it. Without `variant_id`, the product's one line in the cart."""
    product_id = product_id.strip()
    product = await get_product(db, product_id) if quantity else None

    def setting(cart: LockedCart) -> CartSnapshot:
        item = _item_of(cart.items, product_id, variant_id)
        if quantity == 0:
            del cart.items[item.variant_id]
        else:
            variant = cart.variants([item.variant_id]).get(item.variant_id)
            if product is None or variant is None:
                raise OrderError(f"{product_id} is no longer sold; remove it with remove_from_cart")
            _check_stock(variant_name(product, variant), variant, quantity)
            item.quantity = quantity
        if not cart.items:
            cart.cart.currency = None
        return cart.snapshot()

    return await price_cart(db, await change_cart(db, user_id, setting))


async def confirm_prices(db: Database, user_id: str) -> None:
    """Take the catalog's current prices into the cart, after the shopper was told they changed."""

    def confirming(cart: LockedCart) -> None:
        variants = cart.variants(list(cart.items))
        for variant_id, item in cart.items.items():
            variant = variants.get(variant_id)
            if variant is not None and variant.currency == item.currency:
                item.unit_price_minor = variant.price_minor

    await change_cart(db, user_id, confirming)
