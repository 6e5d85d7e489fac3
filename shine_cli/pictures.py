"""Picture sizes for `shine catalog import`: the records' https pictures measured before they are written."""

from __future__ import annotations

from collections.abc import Sequence

from shine_mcp.integrations.image_size import ImageMeasurer, Pictured, measure_pictures
from shine_mcp.store.records import ProductIn


def pictured(records: Sequence[ProductIn]) -> list[tuple[str, Pictured]]:
    """Each product and variant with its label for the import report."""
    out: list[tuple[str, Pictured]] = []
    for record in records:
        out.append((record.handle, record))
        out.extend((f"{record.handle} ({variant.label})", variant) for variant in record.variants)
    return out


async def measure_record_pictures(
    records: Sequence[ProductIn], measurer: ImageMeasurer | None = None
) -> list[str]:
    """Set the width and height of every picture that can be measured; the warnings for the others."""
    return await measure_pictures(pictured(records), measurer or ImageMeasurer())
