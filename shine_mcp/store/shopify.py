"""Shopify's product CSV export read as Shine records: rows grouped by Handle, one record per product with
its variants (sizes, shades) from the rows that have variant fields.

Only the export's layout lives here; validation, errors and vocabulary come from `catalog_rows.py`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from shine_mcp.store.catalog_rows import (
    CatalogFileError,
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
from shine_mcp.vocabulary import CATEGORIES, CONCERNS, SKIN_TYPES, TAGS

REQUIRED_COLUMNS = ("Handle", "Title", "Vendor", "Variant Price")
# A row with any of these is a variant; a row with only an Image Src is one more picture of the product.
VARIANT_COLUMNS = ("Option1 Value", "Option2 Value", "Option3 Value", "Variant SKU", "Variant Price",
                   "Variant Inventory Qty", "Variant Barcode")  # fmt: skip
SIZE_OPTIONS = ("size", "volume", "amount")
NOT_SOLD = ("draft", "archived")
DEFAULT_TITLE = "Default Title"  # Shopify's option value for a product without variants

_TAG_KINDS = {"skin": "skin_types", "skin_type": "skin_types", "skin_types": "skin_types",
              "skintype": "skin_types", "concern": "concerns", "concerns": "concerns",
              "skin_concern": "concerns", "category": "category", "type": "category"}  # fmt: skip
# Shop words for our concerns that don't match a vocabulary word.
_CONCERN_SYNONYMS = {"anti_aging": "fine_lines", "anti_ageing": "fine_lines", "wrinkles": "fine_lines",
                     "hyperpigmentation": "dark_spots", "pigmentation": "dark_spots", "breakouts": "acne",
                     "pores": "large_pores"}  # fmt: skip
_INGREDIENTS_LABEL = re.compile(r"(?<!key )\b(?:ingredients|inci)\s*:", re.IGNORECASE)
_INGREDIENT_HEADINGS = ("ingredients", "full_ingredients", "ingredient_list", "inci")
_BLOCK_TAGS = {"p", "div", "br", "li", "ul", "ol", "tr", "table", "section", "blockquote", "h1", "h2", "h3",
               "h4", "h5", "h6"}  # fmt: skip


@dataclass
class _Row:
    number: int
    cells: dict[str, str]  # lower-cased header -> stripped value

    def get(self, column: str) -> str:
        return self.cells.get(column.lower(), "")

    def has_any(self, columns: tuple[str, ...]) -> bool:
        return any(self.get(c) for c in columns)


@dataclass
class _Tags:
    skin_types: list[str]
    concerns: list[str]
    claims: list[str]
    categories: list[str]
    unknown: list[str]


def read_shopify(
    file: str, text: str, *, default_currency: str, progress: Progress | None = None
) -> ParsedCatalog:
    out = ParsedCatalog("shopify", [], [], [])
    rows = csv_rows(text, file)
    _, header = next(rows)
    index: dict[str, int] = {}
    for i, cell in enumerate(header):
        index.setdefault(cell.strip().lower(), i)
    if missing := [c for c in REQUIRED_COLUMNS if c.lower() not in index]:
        raise CatalogFileError(
            f"{file}: missing Shopify column(s) {', '.join(missing)}; export it again from "
            "Shopify admin > Products > Export, or use format 'csv' for a Shine CSV"
        )
    if "variant inventory qty" not in index:
        out.skipped.append("no 'Variant Inventory Qty' column: every product imported with stock 0")
    groups: dict[str, list[_Row]] = {}
    done = 0
    for done, (number, cells) in enumerate(rows, 1):
        tick(progress, done)
        row = _Row(number, {name: cells[i].strip() for name, i in index.items() if i < len(cells)})
        if not any(row.cells.values()):
            continue
        if not row.get("Handle"):
            out.errors.append(
                RowError(file, number, "Handle", "is empty; every row needs its product's handle")
            )
            continue
        groups.setdefault(row.get("Handle"), []).append(row)
    if done == 0:
        raise CatalogFileError(f"{file}: has a header but no product rows")
    seen: dict[str, int] = {}
    ingredients_column = _ingredients_column(header)
    for handle, group in groups.items():
        _read_group(out, seen, file, handle, group, ingredients_column, default_currency)
    if progress is not None:
        progress(done)
    return out


def _read_group(
    out: ParsedCatalog,
    seen: dict[str, int],
    file: str,
    handle: str,
    rows: list[_Row],
    ingredients_column: str | None,
    currency: str,
) -> None:
    """The first row carries the product; it and any row with variant fields become one record each."""
    first = rows[0]
    status = first.get("Status").lower()
    if status in NOT_SOLD:
        out.skipped.append(f"row {first.number}: {status} product '{handle}' not imported")
        return
    if first.get("Gift Card").lower() == "true":
        out.skipped.append(f"row {first.number}: gift card '{handle}' not imported")
        return
    tags = _read_tags(first.get("Tags"))
    out.skipped.extend(
        f"row {first.number}: tag '{tag}' of '{handle}' not understood, ignored" for tag in tags.unknown
    )
    category = (
        category_for(first.get("Type"), loose=True)
        or next(iter(tags.categories), None)
        or category_for(first.get("Product Category").rsplit(">", 1)[-1], loose=True)
    )
    if category is None:
        said = f"{first.get('Type')!r} is not a skincare category" if first.get("Type") else "is empty"
        message = f"{said}; use one of {', '.join(CATEGORIES)} (or add one of them as a tag)"
        out.errors.append(RowError(file, first.number, "Type", message))
    paragraphs = html_paragraphs(first.get("Body (HTML)"))
    from_column = _metafield_text(first.get(ingredients_column)) if ingredients_column else ""
    product: dict[str, Any] = {
        "brand": first.get("Vendor"),
        "category": category,
        "description": " ".join(paragraphs),
        "currency": currency,
        "ingredients": from_column or ingredients_from_paragraphs(paragraphs),
        "skin_types": tags.skin_types,
        "concerns": tags.concerns,
        "tags": tags.claims,
    }
    product_columns = {"handle": "Handle", "brand": "Vendor", "name": "Title", "description": "Body (HTML)", "category": "Type",
                       "ingredients": (from_column and ingredients_column) or "Body (HTML)",
                       "skin_types": "Tags", "concerns": "Tags", "tags": "Tags"}  # fmt: skip
    image_row = next((r for r in rows if r.get("Image Src")), first)
    variants = [r for r in rows if r is first or r.has_any(VARIANT_COLUMNS)]
    ignore = frozenset({"category"}) if category is None else frozenset()  # already reported once, on Type
    if len(variants) == 1 and not _options(first, variants[0]):
        # Shopify's "Default Title": a product without sizes or shades, its one variant's fields its own.
        fields, variant_columns = _variant(first, variants[0], image_row)
        fields.update(handle=handle, name=first.get("Title"))
    else:
        fields, variant_columns = {"handle": handle, "name": first.get("Title")}, {}
        if image_row.get("Image Src"):
            fields["image_url"] = image_row.get("Image Src")
        valid = []
        for row in variants:
            own, own_columns = _variant(first, row, image_row)
            options = _options(first, row)
            own.update(options=dict(options), sku=row.get("Variant SKU") or None)
            own.update(barcode=row.get("Variant Barcode") or None, image_url=row.get("Variant Image") or None)
            if "price" not in own:
                out.errors.append(
                    RowError(file, row.number, "Variant Price", "is missing; every variant needs a price")
                )
                continue
            at = _at_columns(row.number, {**own_columns, "options": "Option1 Value", "sku": "Variant SKU",
                                          "barcode": "Variant Barcode", "image_url": "Variant Image"})  # fmt: skip
            checked = to_variant(own, file, at)
            if isinstance(checked, list):
                out.errors.extend(checked)
            else:
                valid.append(checked.model_dump())
        if not valid:
            return  # every variant's row has its error
        fields["variants"] = valid

    def locate(name: str) -> tuple[int, str]:
        if name in variant_columns:
            return variants[0].number, variant_columns[name]
        if name == "image_url":
            return image_row.number, "Image Src"
        return first.number, product_columns.get(name, name)

    result = to_record({**product, **fields}, file, locate, ignore=ignore)
    keep(out, seen, result, RowError(file, first.number, "Handle", ""))


def _at_columns(row: int, columns: dict[str, str]) -> Callable[[str], tuple[int, str]]:
    return lambda name: (row, columns.get(name, name))


def _options(first: _Row, variant: _Row) -> list[tuple[str, str]]:
    """A variant's (option name, value) pairs; option names live on the product's first row only."""
    return [
        (first.get(f"Option{i} Name") or f"Option {i}", variant.get(f"Option{i} Value"))
        for i in (1, 2, 3)
        if variant.get(f"Option{i} Value") not in ("", DEFAULT_TITLE)
    ]


def _variant(first: _Row, variant: _Row, image_row: _Row) -> tuple[dict[str, Any], dict[str, str]]:
    """One variant's own fields, and the columns they came from (option names live on the first row only)."""
    options = [
        (first.get(f"Option{i} Name"), f"Option{i} Value", variant.get(f"Option{i} Value"))
        for i in (1, 2, 3)
        if variant.get(f"Option{i} Value") not in ("", DEFAULT_TITLE)
    ]
    size_column = next((column for name, column, _ in options if name.lower().startswith(SIZE_OPTIONS)), None)
    fields: dict[str, Any] = {
        "stock": variant.get("Variant Inventory Qty") or 0,
        "image_url": variant.get("Variant Image") or image_row.get("Image Src") or None,
    }
    if price := variant.get("Variant Price"):
        fields["price"] = price
    if size_column:
        fields["size"] = variant.get(size_column)
    columns = {"price": "Variant Price", "stock": "Variant Inventory Qty",
               "size": size_column or "Option1 Value"}  # fmt: skip
    if variant.get("Variant Image"):
        columns["image_url"] = "Variant Image"
    return fields, columns


def _read_tags(text: str) -> _Tags:
    """Shopify tags are free text; pick out the ones that say a skin type, concern, claim or category."""
    found = _Tags([], [], [], [], [])
    for tag in (t.strip() for t in text.split(",") if t.strip()):
        kind, _, value = tag.rpartition(":")
        kind, value = term(kind), term(value).removesuffix("_skin")
        if kind and kind not in _TAG_KINDS:
            continue  # someone else's namespace ("collection:summer")
        wanted = _TAG_KINDS.get(kind)
        value = _CONCERN_SYNONYMS.get(value, value) if wanted in (None, "concerns") else value
        if value in ("all_skin_types", "all_skin_type") or (wanted == "skin_types" and value == "all"):
            found.skin_types.extend(SKIN_TYPES)
        elif wanted in (None, "skin_types") and value in SKIN_TYPES:
            found.skin_types.append(value)
        elif wanted in (None, "concerns") and value in CONCERNS:
            found.concerns.append(value)
        elif wanted is None and value in TAGS:
            found.claims.append(value)
        elif wanted in (None, "category") and (category := category_for(value.replace("_", " "))):
            found.categories.append(category)
        elif wanted is not None:
            found.unknown.append(tag)
    for values in (found.skin_types, found.concerns, found.claims):
        values[:] = dict.fromkeys(values)
    return found


class _TextParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._hidden += 1
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self._hidden = max(0, self._hidden - 1)
        if tag in _BLOCK_TAGS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_paragraphs(html: str) -> list[str]:
    """Body (HTML) as plain-text paragraphs: tags dropped, entities decoded, whitespace collapsed."""
    if "<" not in html:
        text = html
    else:
        parser = _TextParser()
        parser.feed(html)
        parser.close()
        text = "".join(parser.parts)
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def ingredients_from_paragraphs(paragraphs: list[str]) -> str:
    """The text after "Ingredients:" to the end of its paragraph, or the paragraph under such a heading."""
    for i, paragraph in enumerate(paragraphs):
        following = paragraphs[i + 1] if i + 1 < len(paragraphs) else ""
        if term(paragraph) in _INGREDIENT_HEADINGS:
            return following.rstrip(" .")
        if match := _INGREDIENTS_LABEL.search(paragraph):
            return (paragraph[match.end() :].strip() or following).rstrip(" .")
    return ""


def _ingredients_column(header: list[str]) -> str | None:
    """A column named "Ingredients…", else a metafield column whose key is about ingredients."""
    names = [cell.strip() for cell in header]
    plain = [n for n in names if n.lower().startswith("ingredients")]
    metafields = [n for n in names if "metafields" in n.lower() and "ingredients" in n.lower()]
    # "key_ingredients" is a highlight list, not the full INCI list.
    metafields.sort(key=lambda n: "key_ingredients" in n.lower())
    return next(iter(plain + metafields), None)


def _metafield_text(value: str) -> str:
    """Metafields export as plain text, a JSON list, or Shopify rich text (a JSON tree of paragraphs)."""
    if value[:1] not in ("[", "{"):
        return " ".join(html_paragraphs(value)) if "<" in value else value
    try:
        data = json.loads(value)
    except ValueError:
        return value
    if isinstance(data, list):
        return ", ".join(str(item) for item in data)
    blocks = data.get("children", []) if isinstance(data, dict) else []
    return " ".join("".join(_json_texts(block)) for block in blocks)


def _json_texts(node: Any) -> Iterator[str]:
    """The text leaves of a rich-text node, in reading order."""
    if isinstance(node, dict):
        if isinstance(node.get("value"), str):
            yield node["value"]
        for child in node.get("children", []):
            yield from _json_texts(child)
