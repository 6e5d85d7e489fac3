"""Read catalog files (Shine JSON, Shine CSV, Shopify CSV) into validated records; no database here.

Every reader returns all valid records and every row error it finds, so the caller can choose
all-or-nothing or skip-invalid. Only a file that cannot be read at all raises `CatalogFileError`.
Shopify's export lives in `shopify.py`; the shared pieces (errors, validation, vocabulary) live here.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shine_mcp.store.records import ProductIn, VariantIn, slugify
from shine_mcp.vocabulary import CATEGORIES, CATEGORY_ALIASES

Format = Literal["json", "csv", "shopify"]
Progress = Callable[[int], None]
Locate = Callable[[str], tuple[int, str]]  # ProductIn field -> (row, the column the user sees)

SHINE_JSON_FORMAT = "shine-catalog/1"
PROGRESS_EVERY = 500
CSV_COLUMNS = (
    "handle", "brand", "name", "category", "description", "price", "currency", "size", "url", "image_url",
    "rating", "review_count", "stock", "ingredients", "skin_types", "concerns", "tags",
    "options", "sku", "barcode", "buy_url",
)  # fmt: skip
# A row with `options` ("Shade: Light; Size: 30 ml") is a variant: rows of one handle are one product, its
# fields from the first row, each row's price, stock, size, sku, barcode, image_url and buy_url its variant's.
VARIANT_CSV_FIELDS = ("options", "price", "stock", "size", "sku", "barcode", "image_url", "buy_url")
REQUIRED_CSV_COLUMNS = ("brand", "name", "category", "price")
LIST_FIELDS = ("skin_types", "concerns", "tags")
_LIST_SEPARATORS = re.compile(r"[;|,]")

# Shop words the shared alias table lacks; "sun cream" must not fall through to "cream".
_MORE_CATEGORY_ALIASES = {"sun cream": "sunscreen", "sun lotion": "sunscreen", "sun screen": "sunscreen"}


@dataclass(frozen=True)
class RowError:
    """One invalid row, located the way the user sees their file."""

    file: str
    row: int
    field: str
    message: str

    def __str__(self) -> str:
        where = f", field '{self.field}'" if self.field else ""
        return f"{self.file}, row {self.row}{where}: {self.message}"


@dataclass
class ParsedCatalog:
    format: Format
    records: list[ProductIn]
    errors: list[RowError]
    skipped: list[str]


class CatalogFileError(Exception):
    """The whole file is unusable; the message names the file and what to do about it."""


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
    from shine_mcp.store.shopify import read_shopify  # imported here: shopify.py builds on this module

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


def csv_rows(text: str, file: str) -> Iterator[tuple[int, list[str]]]:
    """Records numbered as a spreadsheet shows them: header is row 1, a multi-line cell is still one row."""
    first_line = text.split("\n", 1)[0]
    # European Excel writes ';'-separated "CSV"; a header with no comma at all gives it away.
    delimiter = ";" if "," not in first_line and ";" in first_line else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        yield from enumerate(reader, 1)
    except csv.Error as exc:
        raise CatalogFileError(
            f"{file}: broken CSV near line {reader.line_num} ({exc}); check its quotes"
        ) from exc


def tick(progress: Progress | None, done: int) -> None:
    if progress is not None and done % PROGRESS_EVERY == 0:
        progress(done)


def category_for(text: str, *, loose: bool = False) -> str | None:
    """Map a shop's word for a category to ours; `loose` also finds it inside a phrase ("Night Cream")."""
    words = _words(text)
    found = _CATEGORY_WORDS.get(" ".join(words))
    if found or not loose:
        return found
    for size in range(_LONGEST_ALIAS, 0, -1):
        # Rightmost first: English puts the head noun last ("Cream Cleanser" is a cleanser).
        for start in range(len(words) - size, -1, -1):
            if found := _CATEGORY_WORDS.get(" ".join(words[start : start + size])):
                return found
    return None


def _words(text: str) -> list[str]:
    """Lower-case words in British spelling, singular, so 'Moisturizers' and 'moisturiser' meet."""
    words = re.findall(r"[a-z]+", text.lower().replace("iz", "is"))
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


_CATEGORY_WORDS = {
    " ".join(_words(alias)): category
    for aliases in ({c: c for c in CATEGORIES}, CATEGORY_ALIASES, _MORE_CATEGORY_ALIASES)
    for alias, category in aliases.items()
}
_LONGEST_ALIAS = max(len(key.split()) for key in _CATEGORY_WORDS)


def term(value: str) -> str:
    """'Fragrance-free' -> 'fragrance_free': the spelling of our vocabularies."""
    return re.sub(r"[\s-]+", "_", value.strip().lower())


def to_record(
    fields: dict[str, Any], file: str, locate: Locate, *, ignore: frozenset[str] = frozenset()
) -> ProductIn | list[RowError]:
    """Validate one product; errors are placed at the user's row and column, minus fields in `ignore`."""
    try:
        return ProductIn.model_validate(fields)
    except ValidationError as exc:
        return _row_errors(exc, file, locate, ignore)


def to_variant(fields: dict[str, Any], file: str, locate: Locate) -> VariantIn | list[RowError]:
    """Validate one variant (a size or shade) on its own row, like `to_record`."""
    try:
        return VariantIn.model_validate(fields)
    except ValidationError as exc:
        return _row_errors(exc, file, locate, frozenset())


def _row_errors(exc: ValidationError, file: str, locate: Locate, ignore: frozenset[str]) -> list[RowError]:
    errors: list[RowError] = []
    for err in exc.errors():
        name = str(err["loc"][0]) if err["loc"] else ""
        if name in ignore:
            continue
        row, column = locate(name)
        if name == "variants" and len(err["loc"]) >= 3:  # which variant, which of its fields
            column = f"variants[{int(err['loc'][1]) + 1}].{err['loc'][2]}"
        error = RowError(file, row, column, _human(err))
        if error not in errors:
            errors.append(error)
    return errors


def _human(err: ErrorDetails) -> str:
    """Pydantic's wording, rephrased as what is wrong and what to write instead."""
    value = err.get("input")
    template = _MESSAGES.get(err["type"])
    if template is None:
        return err["msg"].removeprefix("Value error, ").replace("Input should be", "must be")
    shown = repr(value) if isinstance(value, str) else value
    return template.format(shown=shown, value=value, length=len(str(value)), **err.get("ctx", {}))


_MESSAGES = {
    **dict.fromkeys(
        ("decimal_parsing", "decimal_type", "float_parsing", "float_type"),
        "{shown} is not a number; write it like 12.50",
    ),
    **dict.fromkeys(("int_parsing", "int_from_float"), "{shown} is not a whole number"),
    "missing": "is missing; every product needs it",
    "literal_error": "{shown} is not allowed; use one of {expected}",
    "extra_forbidden": "is not a product field; known fields are " + ", ".join(ProductIn.model_fields),
    "greater_than": "must be greater than {gt} (got {value})",
    "greater_than_equal": "must be {ge} or more (got {value})",
    "less_than_equal": "must be at most {le} (got {value})",
    "string_too_short": "must not be empty",
    "string_too_long": "is too long ({length} characters; at most {max_length})",
    "string_pattern_mismatch": "{shown} is not a 3-letter currency code such as USD or EUR",  # only currency
}


def keep(
    out: ParsedCatalog, seen: dict[str, int], result: ProductIn | list[RowError], where: RowError
) -> None:
    """Keep a record unless an earlier row used its handle (the later one would silently win on import)."""
    if isinstance(result, list):
        out.errors.extend(result)
    elif (first := seen.setdefault(result.handle, where.row)) != where.row:
        message = f"handle '{result.handle}' is already used on row {first}; handles must be unique"
        out.errors.append(RowError(where.file, where.row, where.field, message))
    else:
        out.records.append(result)


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
    product = {k: v for k, v in first.items() if k not in VARIANT_CSV_FIELDS or k == "image_url"}
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
