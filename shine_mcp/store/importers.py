"""Read catalog files (Shine JSON, Shine CSV, Shopify CSV) into validated records; no database here.

Every reader returns all valid records and every row error it finds, so the caller can choose
all-or-nothing or skip-invalid. Only a file that cannot be read at all raises `CatalogFileError`.
Shopify's export lives in `shopify.py`; the pieces both readers share (errors, validation, vocabulary) in
`catalog_rows.py`.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from shine_mcp.store.catalog_rows import (
    CatalogFileError,
    Format,
    Locate,
    ParsedCatalog,
    Progress,
    RowError,
    category_for,
    csv_rows,
    keep,
    term,
    tick,
    to_record,
    to_variant,
)
from shine_mcp.store.records import slugify
from shine_mcp.store.shopify import read_shopify

SHINE_JSON_FORMAT = "shine-catalog/1"
CSV_COLUMNS = (
    "handle", "brand", "name", "category", "description", "price", "currency", "size", "url", "image_url",
    "rating", "review_count", "stock", "ingredients", "skin_types", "concerns", "tags",
    "options", "sku", "barcode", "buy_url", "image_width", "image_height",
)  # fmt: skip
# A row with `options` ("Shade: Light; Size: 30 ml") is a variant: rows of one handle are one product, its
# fields from the first row, each row's price, stock, size, sku, barcode, image_url (with its image_width and
# image_height) and buy_url its variant's.
VARIANT_CSV_FIELDS = (
    "options", "price", "stock", "size", "sku", "barcode", "image_url", "image_width", "image_height", "buy_url",
)  # fmt: skip
IMAGE_FIELDS = ("image_url", "image_width", "image_height")
REQUIRED_CSV_COLUMNS = ("brand", "name", "category", "price")
LIST_FIELDS = ("skin_types", "concerns", "tags")
_LIST_SEPARATORS = re.compile(r"[;|,]")


def detect_format(path: Path) -> Format:
    """Guess from the name, then the header: Shopify exports are CSVs with `Handle` and `Variant Price`."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xls", ".numbers", ".ods"):
        raise CatalogFileError(
            f"{path.name}: spreadsheets can't be read directly; export the sheet as CSV (UTF-8)"
        )
    text = read_text(path)
    if suffix == ".json" or (suffix != ".csv" and text.lstrip()[:1] in ("{", "[")):
        return "json"
    header = {cell.strip().lower() for cell in next(csv_rows(text, path.name))[1]}
    return "shopify" if {"handle", "variant price"} <= header else "csv"


def count_rows(path: Path, fmt: Format) -> int:
    """How many rows `read_catalog` will report through `progress`: products for JSON, data lines for CSV."""
    text = read_text(path)
    if fmt == "json":
        return len(_json_products(path.name, text))
    return sum(1 for _ in csv_rows(text, path.name)) - 1


def read_catalog(
    path: Path,
    fmt: Format | None = None,
    *,
    default_currency: str = "USD",
    progress: Progress | None = None,
) -> ParsedCatalog:
    """Parse and validate a catalog file; `default_currency` fills in files and rows that name none."""
    if not re.fullmatch(r"[A-Za-z]{3}", default_currency):
        raise ValueError(f"default currency {default_currency!r} is not a 3-letter ISO code such as USD")
    fmt = fmt or detect_format(path)
    text = read_text(path)
    if fmt == "json":
        return _read_json(path.name, text, default_currency.upper(), progress)
    if fmt == "csv":
        return _read_csv(path.name, text, default_currency.upper(), progress)
    return read_shopify(path.name, text, default_currency=default_currency.upper(), progress=progress)


def read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise CatalogFileError(f"{path}: no such file; check the path") from exc
    except OSError as exc:
        raise CatalogFileError(f"{path}: can't be read ({exc.strerror})") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise CatalogFileError(f"{path.name}: is UTF-16 text; save it again as UTF-8 (Excel: 'CSV UTF-8')")
    try:
        text = data.decode("utf-8-sig")  # Excel's "CSV UTF-8" starts with a byte-order mark
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise CatalogFileError(
            f"{path.name}: is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "save it again as UTF-8 (Excel: 'CSV UTF-8')"
        ) from exc
    if not text.strip():
        raise CatalogFileError(f"{path.name}: the file is empty; export the catalog again")
    return text


def _at(row: int, columns: dict[str, str] | None = None) -> Locate:
    return lambda name: (row, (columns or {}).get(name, name))


def _json_products(file: str, text: str) -> list[Any]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CatalogFileError(
            f"{file}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); "
            "look for a missing comma, quote or bracket just before that point"
        ) from exc
    if isinstance(data, dict):
        if data.get("format", SHINE_JSON_FORMAT) != SHINE_JSON_FORMAT:
            raise CatalogFileError(
                f"{file}: format {data['format']!r} is not supported; use '{SHINE_JSON_FORMAT}'"
            )
        data = data.get("products")
    if not isinstance(data, list):
        raise CatalogFileError(
            f'{file}: expected {{"format": "{SHINE_JSON_FORMAT}", "products": [...]}} or a list'
        )
    if not data:
        raise CatalogFileError(f"{file}: has no products")
    return data


def _read_json(file: str, text: str, currency: str, progress: Progress | None) -> ParsedCatalog:
    out = ParsedCatalog("json", [], [], [])
    seen: dict[str, int] = {}
    products = _json_products(file, text)
    for row, item in enumerate(products, 1):
        tick(progress, row)
        if not isinstance(item, dict):
            out.errors.append(
                RowError(file, row, "", f"must be an object of product fields, not {item!r:.40}")
            )
            continue
        fields = {"currency": currency, **item}
        ignore = _fill_handle(fields)
        keep(out, seen, to_record(fields, file, _at(row), ignore=ignore), RowError(file, row, "handle", ""))
    if progress is not None:
        progress(len(products))
    return out


def _read_csv(file: str, text: str, currency: str, progress: Progress | None) -> ParsedCatalog:
    out = ParsedCatalog("csv", [], [], [])
    rows = csv_rows(text, file)
    _, header = next(rows)
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        index.setdefault(term(cell), i)
    shown = {name: header[i].strip() for name, i in index.items()}
    if missing := [c for c in REQUIRED_CSV_COLUMNS if c not in index]:
        hint = " (this looks like a Shopify export: use format 'shopify')" if "variant_price" in index else ""
        raise CatalogFileError(
            f"{file}: missing required column(s) {', '.join(missing)}{hint}; "
            f"the header may name {', '.join(CSV_COLUMNS)}"
        )
    if unknown := [cell.strip() for cell in header if cell.strip() and term(cell) not in CSV_COLUMNS]:
        out.skipped.append(f"column(s) {', '.join(unknown)} not recognised and ignored")
    seen: dict[str, int] = {}
    grouped: dict[str, list[tuple[int, dict[str, Any]]]] = {}  # handle -> its variant rows
    done = 0
    for done, (row, cells) in enumerate(rows, 1):
        tick(progress, done)
        if not any(cell.strip() for cell in cells):
            continue  # spreadsheets leave blank rows at the end
        if any(cell.strip() for cell in cells[len(header) :]):
            message = (
                f"has {len(cells)} cells but the header has {len(header)}; quote cells that contain commas"
            )
            out.errors.append(RowError(file, row, "", message))
            continue
        fields = _csv_fields(cells, index, currency)
        if "options" in fields:
            if not fields.get("handle"):
                message = "is needed on a row with options: the rows of one product share its handle"
                out.errors.append(RowError(file, row, shown.get("handle", "handle"), message))
            else:
                grouped.setdefault(str(fields["handle"]).lower(), []).append((row, fields))
            continue
        if own := {k: fields.pop(k) for k in ("sku", "barcode") if k in fields}:
            # A product without options: its SKU and barcode are its one variant's.
            kept = {k: fields[k] for k in ("stock", "size") if k in fields}
            fields["variants"] = [{**own, **kept}]
        ignore = _fill_handle(fields)
        result = to_record(fields, file, _at(row, shown), ignore=ignore)
        keep(out, seen, result, RowError(file, row, shown.get("handle", "handle"), ""))
    for group in grouped.values():
        _csv_product_with_variants(out, seen, file, group, shown)
    if done == 0:
        raise CatalogFileError(f"{file}: has a header but no product rows")
    if progress is not None:
        progress(done)
    return out


def _csv_product_with_variants(
    out: ParsedCatalog,
    seen: dict[str, int],
    file: str,
    group: list[tuple[int, dict[str, Any]]],
    shown: dict[str, str],
) -> None:
    """One product from the rows sharing a handle, a variant per row (a bad row loses only its variant)."""
    first_row, first = group[0]
    variants: list[dict[str, Any]] = []
    for row, fields in group:
        own = {name: fields[name] for name in VARIANT_CSV_FIELDS if name in fields}
        options = [part.partition(":") for part in _OPTION_SEPARATORS.split(own["options"]) if part.strip()]
        own["options"] = {
            (name.strip() if value else f"Option {i}"): (value or name).strip()
            for i, (name, _, value) in enumerate(options, 1)
        }
        checked = to_variant(own, file, _at(row, shown))
        if isinstance(checked, list):
            out.errors.extend(checked)
        else:
            variants.append(checked.model_dump())
    if not variants:
        return
    product = {k: v for k, v in first.items() if k not in VARIANT_CSV_FIELDS or k in IMAGE_FIELDS}
    product["variants"] = variants
    result = to_record(product, file, _at(first_row, shown))
    keep(out, seen, result, RowError(file, first_row, shown.get("handle", "handle"), ""))


_OPTION_SEPARATORS = re.compile(r"[;|]")


def _csv_fields(cells: list[str], index: dict[str, int], currency: str) -> dict[str, Any]:
    """Empty cells are left out so the model's defaults apply."""
    fields: dict[str, Any] = {"currency": currency}
    for name in CSV_COLUMNS:
        i = index.get(name)
        value = cells[i].strip() if i is not None and i < len(cells) else ""
        if not value:
            continue
        if name in LIST_FIELDS:
            fields[name] = [term(item) for item in _LIST_SEPARATORS.split(value) if item.strip()]
        elif name == "category":
            fields[name] = category_for(value) or value
        else:
            fields[name] = value
    return fields


def _fill_handle(fields: dict[str, Any]) -> frozenset[str]:
    """A missing handle is derived from brand, name and size, so re-imports still match the same product.

    Returns the fields not to complain about: without a brand or name there is no handle either,
    and the user only needs to hear about the brand or name.
    """
    if not fields.get("handle") and fields.get("brand") and fields.get("name"):
        parts = [fields["brand"], fields["name"], fields.get("size") or ""]
        fields["handle"] = slugify(" ".join(str(p) for p in parts))
    return frozenset() if fields.get("handle") else frozenset({"handle"})
