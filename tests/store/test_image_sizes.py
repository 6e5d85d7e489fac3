"""A merchant's pictures come with their size: given in the import file (image_width, image_height) or
measured at import from the first bytes of each https picture (a local HTTPS fake of the shop's image host),
so cards, get_product and the shop page reserve their space. Links that cannot be measured are reported
and lose nothing."""

from __future__ import annotations

import json
import re
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cards import product_card
from shine_cli.cli import app
from shine_cli.pictures import measure_record_pictures
from shine_mcp.config import Settings
from shine_mcp.integrations.image_size import HEADER_BYTES, ImageMeasurer
from shine_mcp.integrations.public_http import AddressPolicy
from shine_mcp.store.catalog import get_product, get_variants, remove_source, upsert_products
from shine_mcp.store.importers import read_catalog
from shine_mcp.store.records import product_id_for
from tests.auth.support import TLSFiles, make_tls, serving
from tests.checkout.conftest import Shop, in_own_task, open_shop, shop_settings
from tests.fakes.merchant_images import MerchantImages, create_app
from tests.support.postgres import free_port

Host = tuple[MerchantImages, str]


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    return make_tls(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def images(tls: TLSFiles) -> Iterator[Host]:
    host = MerchantImages()
    with serving(create_app(host), free_port(), tls) as url:
        try:
            yield host, url
        finally:
            host.release.set()


@pytest.fixture
def measurer(tls: TLSFiles) -> ImageMeasurer:
    # Test-only: the fake host stands in for a public CDN on this machine.
    return ImageMeasurer(
        timeout=5,
        policy=AddressPolicy.allowing(["127.0.0.1/32"]),
        ssl_context=ssl.create_default_context(cafile=str(tls.ca)),
    )


def product(handle: str, image_url: str | None, **more: Any) -> dict[str, Any]:
    return {
        "handle": handle,
        "brand": "Lumen",
        "name": handle.replace("-", " ").title(),
        "category": "serum",
        "price": "20.00",
        "stock": 3,
        "image_url": image_url,
        **more,
    }


def catalog_file(tmp_path: Path, products: list[dict[str, Any]]) -> Path:
    path = tmp_path / "catalog.json"
    path.write_text(json.dumps({"format": "shine-catalog/1", "products": products}))
    return path


@pytest.fixture
async def shop(settings: Settings) -> Any:
    async with in_own_task(open_shop(shop_settings(settings.data_dir))) as opened:
        yield opened


async def test_imported_pictures_are_measured_from_their_first_bytes(
    shop: Shop, images: Host, measurer: ImageMeasurer, tmp_path: Path
) -> None:
    host, url = images
    variants = [
        {
            "options": {"Size": "15 ml"},
            "price": "12.00",
            "stock": 2,
            "image_url": f"{url}/products/cream.png",
        },
        {"options": {"Size": "50 ml"}, "price": "30.00", "stock": 2},
    ]
    parsed = read_catalog(
        catalog_file(
            tmp_path,
            [
                product("lumen-serum", f"{url}/products/serum.jpg"),
                product("lumen-cream", None, variants=variants),
            ],
        ),
        default_currency="USD",
    )
    assert parsed.errors == []

    warnings = await measure_record_pictures(parsed.records, measurer)
    await upsert_products(shop.services.db, parsed.records, source="import:catalog.json")

    assert warnings == []
    serum = await get_product(shop.services.db, product_id_for("lumen-serum"))
    cream = await get_product(shop.services.db, product_id_for("lumen-cream"))
    assert serum is not None and (serum.image_width, serum.image_height) == (640, 480)
    # The product's picture is its first variant's, with that picture's size.
    assert cream is not None and (cream.image_width, cream.image_height) == (300, 400)
    first, second = await get_variants(shop.services.db, cream.id)
    assert (first.image_width, first.image_height) == (300, 400)
    assert (second.image_url, second.image_width) == (None, None)
    # Only the header was read: the serum's file never ended (a whole-file read times out), and the rest
    # of it was never sent.
    assert not host.release.is_set() and host.sent["/products/serum.jpg"] == len(host.jpeg) < HEADER_BYTES

    detail = await shop.call("get_product", {"product_id": serum.id})
    page = await shop.call("search_products", {"query": "lumen serum"})
    found = next(p for p in page["products"] if p["id"] == serum.id)
    assert detail["image"]["width"] == 640 and detail["image"]["height"] == 480
    assert found["image"]["width"] == 640 and found["image"]["height"] == 480
    card = product_card(detail)
    assert card is not None and card["image_size"] == {"width": 640, "height": 480}
    await remove_source(shop.services.db, "demo")  # as an import of the shop's own catalog does
    shop_page = (await shop.http.get("/")).text
    tile = re.search(rf'<img src="{re.escape(url)}/products/serum\.jpg"[^>]*>', shop_page)
    assert tile is not None and 'width="640" height="480"' in tile.group(0)


async def test_pictures_that_cannot_be_measured_are_reported_and_lose_nothing(
    shop: Shop, images: Host, measurer: ImageMeasurer, tmp_path: Path
) -> None:
    _, url = images
    closed = f"https://127.0.0.1:{free_port()}/products/serum.jpg"
    links = {
        "page": f"{url}/products/serum.html",
        "gone": f"{url}/products/gone.jpg",
        "heavy": f"{url}/products/heavy.jpg",
        "huge": f"{url}/products/huge.png",
        "closed": closed,
    }
    parsed = read_catalog(
        catalog_file(tmp_path, [product(f"lumen-{name}", link) for name, link in links.items()]),
        default_currency="USD",
    )

    warnings = await measure_record_pictures(parsed.records, measurer)
    await upsert_products(shop.services.db, parsed.records, source="import:catalog.json")

    said = {name: next(w for w in warnings if w.startswith(f"lumen-{name}:")) for name in links}
    assert len(warnings) == len(links)
    assert "a web page, not a picture" in said["page"]
    assert "404" in said["gone"]
    assert "600 MB, too heavy" in said["heavy"]
    assert "30000 × 30000 px" in said["huge"] or "too many pixels" in said["huge"]
    assert "could not download" in said["closed"]
    assert all("imported without its size" in w for w in warnings)
    for name, link in links.items():
        kept = await get_product(shop.services.db, product_id_for(f"lumen-{name}"))
        assert kept is not None and kept.image_url == link and kept.image_width is None


async def test_the_default_policy_measures_no_picture_on_this_machine(
    images: Host, tls: TLSFiles, tmp_path: Path
) -> None:
    host, url = images
    parsed = read_catalog(
        catalog_file(tmp_path, [product("lumen-serum", f"{url}/products/serum.jpg")]),
        default_currency="USD",
    )
    public_only = ImageMeasurer(ssl_context=ssl.create_default_context(cafile=str(tls.ca)))

    warnings = await measure_record_pictures(parsed.records, public_only)

    assert len(warnings) == 1 and "loopback" in warnings[0]
    assert host.sent == {} and parsed.records[0].image_width is None


def test_sizes_given_in_json_and_csv_need_no_fetch(tmp_path: Path) -> None:
    json_file = catalog_file(
        tmp_path,
        [product("lumen-serum", "https://cdn.example.com/s.jpg", image_width=800, image_height=1000)],
    )
    csv_file = tmp_path / "catalog.csv"
    csv_file.write_text(
        "handle,brand,name,category,price,image_url,image_width,image_height,options\n"
        "lumen-tint,Lumen,Tint,moisturiser,20.00,https://cdn.example.com/t-light.jpg,600,600,Shade: Light\n"
        "lumen-tint,Lumen,Tint,moisturiser,20.00,https://cdn.example.com/t-dark.jpg,640,480,Shade: Dark\n"
    )

    from_json = read_catalog(json_file, default_currency="USD")
    from_csv = read_catalog(csv_file, default_currency="USD")

    assert from_json.errors == [] and from_csv.errors == []
    serum = from_json.records[0].to_row("import:catalog.json")
    assert (serum.image_width, serum.image_height) == (800, 1000)
    tint = from_csv.records[0]
    assert (tint.to_row("import:catalog.csv").image_width, tint.to_row("x").image_height) == (600, 600)
    assert [(v.image_width, v.image_height) for v in tint.variant_rows()] == [(600, 600), (640, 480)]


def test_shine_catalog_import_reports_a_picture_it_cannot_measure_and_imports_the_product(
    settings: Settings, tmp_path: Path
) -> None:
    link = f"https://127.0.0.1:{free_port()}/serum.jpg"
    path = catalog_file(tmp_path, [product("lumen-serum", link)])
    env = {"SHINE_DATA_DIR": str(settings.data_dir), "DATABASE_URL": None, "COLUMNS": "300"}

    result = CliRunner().invoke(app, ["catalog", "import", str(path)], env=env)

    assert result.exit_code == 0, result.output
    assert "Imported 1 products" in result.output
    assert "lumen-serum: picture" in result.output and "not measured" in result.output


async def test_a_shopify_exports_image_src_is_measured(
    images: Host, measurer: ImageMeasurer, tmp_path: Path
) -> None:
    _, url = images
    template = (Path(__file__).parents[1] / "fakes" / "fixtures" / "shopify_template.csv").read_text()
    pictures = sorted(set(re.findall(r"https://[^,\"\s]+", template)))
    assert pictures, "the template links its pictures"
    export = tmp_path / "products_export.csv"
    for picture in pictures:
        template = template.replace(picture, f"{url}/products/cream.png")
    export.write_text(template)
    parsed = read_catalog(export, default_currency="USD")

    warnings = await measure_record_pictures(parsed.records, measurer)

    [record] = parsed.records
    row = record.to_row("import:products_export.csv")
    assert warnings == [] and (row.image_width, row.image_height) == (300, 400)
