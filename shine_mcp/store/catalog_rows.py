"""What every catalog reader shares: the row errors users see, the parsed result, CSV rows numbered as a
spreadsheet shows them, progress ticks, the shop-word to vocabulary mapping and validation into records.

`importers.py` (Shine JSON and CSV, and the entry point) and `shopify.py` (Shopify's export) both build on
this module; it imports neither, so the two readers do not depend on each other's import order.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from shine_mcp.store.records import ProductIn, VariantIn
from shine_mcp.vocabulary import CATEGORIES, CATEGORY_ALIASES

Format = Literal["json", "csv", "shopify"]
Progress = Callable[[int], None]
Locate = Callable[[str], tuple[int, str]]  # ProductIn field -> (row, the column the user sees)

PROGRESS_EVERY = 500

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
