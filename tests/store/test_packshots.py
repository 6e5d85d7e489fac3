"""Every product has a picture: the shop's own photo when its catalog gives one on https, else Shine's drawn
packshot, served by Shine, small, cacheable, sized in advance, and absolute in tool results."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from html.parser import HTMLParser
from types import SimpleNamespace

import httpx
from mcp import Client
from sqlmodel import select

from shine_mcp.config import Settings
from shine_mcp.services import Services
from shine_mcp.store import packshots
from shine_mcp.store.records import ProductIn
from shine_mcp.store.tables import Product
from shine_mcp.store.views import image_of
from shine_mcp.vocabulary import CATEGORIES
from web_shell.app import create_app

SVG = "{http://www.w3.org/2000/svg}"
SHOP_PAGE_IMAGE_CAP = 60 * 1024


@asynccontextmanager
async def open_web(settings: Settings) -> AsyncIterator[tuple[httpx.AsyncClient, Services]]:
    """The real app on the demo catalog, over ASGI (an async fixture may be finished in another task, which
    the app's lifespan refuses)."""
    quiet = settings.model_copy(update={"fulfilment_worker": False})
    services = Services(quiet)
    app = create_app(quiet, services)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=quiet.base_url) as http:
            yield http, services


def drawable(brand: str, name: str, category: str = "serum", product_id: str = "prd_0123456789ab") -> object:
    return SimpleNamespace(id=product_id, brand=brand, name=name, category=category)


def texts(svg: str) -> list[str]:
    return ["".join(node.itertext()) for node in ET.fromstring(svg).iter(f"{SVG}text")]


async def test_every_demo_product_image_is_a_small_valid_svg_served_by_shine(settings: Settings) -> None:
    async with open_web(settings) as (http, services):
        async with services.db.session() as session:
            products = list((await session.execute(select(Product))).scalars())
        assert len(products) == 255

        for product in products:
            image = image_of(product)
            assert image.generated and image.width == image.height == packshots.SIZE
            response = await http.get(image.url)

            assert response.status_code == 200, product.id
            assert response.headers["content-type"] == "image/svg+xml"
            assert len(response.content) < packshots.MAX_BYTES < SHOP_PAGE_IMAGE_CAP
            assert "immutable" in response.headers["cache-control"]
            root = ET.fromstring(response.content)  # well-formed XML, or this raises
            assert root.tag == f"{SVG}svg"
            assert (root.get("width"), root.get("height")) == (str(packshots.SIZE), str(packshots.SIZE))
            assert product.brand.upper()[:20] in " ".join(texts(response.text))


async def test_a_cached_packshot_is_revalidated_with_its_etag(settings: Settings) -> None:
    async with open_web(settings) as (http, _):
        src = re.search(r'src="(/images/products/[^"]+)"', (await http.get("/")).text)
        assert src is not None
        response = await http.get(src.group(1))

        again = await http.get(src.group(1), headers={"If-None-Match": response.headers["etag"]})

        assert again.status_code == 304
        unversioned = await http.get(src.group(1).split("?")[0])
        assert unversioned.status_code == 200
        assert "immutable" not in unversioned.headers["cache-control"]  # no version named: not kept for good
        for path in ("prd_000000000000.svg", "..%2f..%2fetc%2fpasswd.svg", "x.svg"):
            assert (await http.get(packshots.PATH_PREFIX + path)).status_code == 404, path


class Tiles(HTMLParser):
    """The shop page's product tiles and the images in them."""

    def __init__(self) -> None:
        super().__init__()
        self.tiles = 0
        self.images: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "li" and ("class", "tile") in attrs:
            self.tiles += 1
        if tag == "img":
            self.images.append(dict(attrs))


async def test_the_shop_page_shows_every_product_with_an_image_of_known_size(settings: Settings) -> None:
    async with open_web(settings) as (http, _):
        page = await http.get("/")
        parsed = Tiles()
        parsed.feed(page.text)

        assert parsed.tiles >= 8
        assert len(parsed.images) == parsed.tiles
        for image in parsed.images:
            assert image["width"] and image["height"], image  # the box is known before the picture arrives
            assert image["alt"] == ""  # the brand and name are written beside it
            assert (await http.get(str(image["src"]))).status_code == 200


def test_names_are_drawn_as_text_never_read_as_markup() -> None:
    brand = '<script>"x"</script>&Co\x00\x1b'
    svg = packshots.packshot_svg(drawable(brand, "Oil ]]> <b>Bold</b> Serum", "cleanser"))

    root = ET.fromstring(svg)
    assert not [node for node in root.iter() if node.tag.endswith(("script", "b"))]
    shown = " ".join(texts(svg))
    assert '<SCRIPT>"X"</SCRIPT>&CO' in shown
    assert "]]> <b>Bold</b>" in shown


def test_a_very_long_name_still_fits_the_size_cap() -> None:
    svg = packshots.packshot_svg(drawable("B" * 200, "word " * 60, "mask"))

    assert len(svg.encode()) < packshots.MAX_BYTES
    assert all(len(line) <= 40 for line in texts(svg))


def test_the_same_product_is_drawn_the_same_way_and_a_brand_keeps_its_colour() -> None:
    one = drawable("CeraVe", "Hydrating Cleanser", "cleanser", "prd_aaaaaaaaaaaa")
    assert packshots.packshot_svg(one) == packshots.packshot_svg(one)

    hues = {
        brand: [
            packshots.palette(brand, f"prd_{n}").body
            for n in ("111111111111", "222222222222", "333333333333")
        ]
        for brand in ("CeraVe", "The Ordinary")
    }
    assert packshots.palette("CeraVe", "x").background != packshots.palette("The Ordinary", "x").background
    for shades in hues.values():
        assert len(set(shades)) > 1  # products of a brand differ a little ...
    assert not set(hues["CeraVe"]) & set(hues["The Ordinary"])  # ... brands differ more


def test_each_category_is_drawn_as_its_own_kind_of_pack() -> None:
    drawings = {packshots.packshot_svg(drawable("Brand", "Name", c)) for c in CATEGORIES}
    assert len(drawings) == len(CATEGORIES)
    assert set(packshots.SHAPES) == set(CATEGORIES)


def test_a_shops_own_https_picture_is_kept_and_an_http_one_replaced_by_a_drawing() -> None:
    def product(image_url: str) -> Product:
        return ProductIn(
            handle="p", brand="B", name="N", category="toner", price=5, image_url=image_url
        ).to_row("import:shop.csv")

    own = image_of(product("https://cdn.shopify.com/s/files/1/toner.jpg?v=17"), "https://shop.example")
    assert own.url == "https://cdn.shopify.com/s/files/1/toner.jpg?v=17" and not own.generated
    assert own.srcset is not None and "width=480 480w" in own.srcset and "v=17" in own.srcset
    elsewhere = image_of(product("https://images.example/toner.jpg"), "https://shop.example")
    assert elsewhere.url == "https://images.example/toner.jpg" and elsewhere.srcset is None

    insecure = image_of(product("http://images.example/toner.jpg"), "https://shop.example")
    assert insecure.generated and insecure.url.startswith("https://shop.example/images/products/prd_")


async def test_tool_results_give_each_product_an_absolute_image_with_its_size(
    client: Client, settings: Settings
) -> None:
    page = await client.call_tool("search_products", {"query": "serum", "limit": 5})
    assert page.structured_content is not None
    products = page.structured_content["products"]
    assert products
    for product in products:
        assert product["image"]["url"].startswith(settings.base_url + "/images/products/")
        assert product["image_url"] == product["image"]["url"]
        assert product["image"]["width"] == product["image"]["height"] == packshots.SIZE

    detail = await client.call_tool("get_product", {"product_id": products[0]["id"]})
    assert detail.structured_content is not None
    assert detail.structured_content["image"] == products[0]["image"]

    advice = await client.call_tool("recommend_products", {"skin_type": "dry", "limit": 3})
    assert advice.structured_content is not None, advice.content
    for entry in advice.structured_content["products"]:
        assert entry["product"]["image_url"].startswith(settings.base_url + "/images/products/")
