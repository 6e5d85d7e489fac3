"""Raw Firecrawl image results into clean ones: safe URLs only, site rules applied, one entry per picture
(whatever its size or tracking parameters), ranked by how well the title and page match the query."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, Field

from shine_mcp.tools._web_safety import (
    clean_text,
    host_in,
    host_of,
    image_identity,
    is_public_http_url,
    normalise_url,
)

MAX_TITLE = 200
_GOOD_SIZE = 600  # px on the short side: big enough to look at in a chat


class WebImage(BaseModel):
    image_url: str = Field(description="The picture itself (largest rendition found).")
    page_url: str = Field(description="The page it was found on: link to it when showing the image.")
    title: str = Field(description="Untrusted: the page's or image's title, as published.")
    width: int | None = Field(description="Pixels, as reported by the search; null when unknown.")
    height: int | None
    source_domain: str = Field(description="The site the page belongs to, e.g. beautyjournal.example.")
    attribution: str = Field(description="Credit line to show with the image.")
    relevance: float = Field(
        description="0-1: share of the query's words found in the title or page address."
    )


def words(text: str) -> set[str]:
    found = re.findall(r"[a-z0-9]+", text.lower())
    return {w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in found}


def _size(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and 0 < value < 100_000 else None


def clean_images(
    raw: list[Any], *, query: str, allowed: list[str], blocked: list[str]
) -> tuple[list[WebImage], int]:
    """The kept images, best first, and how many raw results were dropped (unsafe, blocked or off-site)."""
    wanted = words(query)
    kept: dict[str, tuple[tuple[float, int], WebImage]] = {}
    dropped = 0
    for position, item in enumerate(raw):
        if not isinstance(item, dict):
            dropped += 1
            continue
        image_url, page_url = item.get("imageUrl"), item.get("url")
        if not (is_public_http_url(image_url) and is_public_http_url(page_url)):
            dropped += 1
            continue
        assert isinstance(image_url, str) and isinstance(page_url, str)
        page_host, image_host = host_of(page_url), host_of(image_url)
        if (
            (allowed and not host_in(page_host, allowed))
            or host_in(page_host, blocked)
            or host_in(image_host, blocked)
        ):
            dropped += 1
            continue
        title = clean_text(item.get("title"), MAX_TITLE)
        width, height = _size(item.get("imageWidth")), _size(item.get("imageHeight"))
        found = words(title) | words(page_url.split("//", 1)[-1])
        relevance = len(wanted & found) / len(wanted) if wanted else 0.0
        big = min(width or 0, height or 0) >= _GOOD_SIZE
        image = WebImage(
            image_url=image_url,
            page_url=normalise_url(page_url),
            title=title,
            width=width,
            height=height,
            source_domain=page_host,
            attribution=f"Image from {page_host}; it belongs to its owner. Show it with a link to its page.",
            relevance=round(relevance, 3),
        )
        rank = (relevance + (0.05 if big else 0.0), -position)
        identity = image_identity(image_url)
        previous = kept.get(identity)
        if previous is None:
            kept[identity] = (rank, image)
        else:
            dropped += 1
            old_rank, old = previous
            # Same picture: keep the largest rendition, the better rank, and the page it ranked best on.
            best = image if (width or 0) * (height or 0) > (old.width or 0) * (old.height or 0) else old
            first = old if old_rank >= rank else image
            kept[identity] = (
                max(old_rank, rank),
                first.model_copy(
                    update={"image_url": best.image_url, "width": best.width, "height": best.height}
                ),
            )
    ordered = sorted(kept.values(), key=lambda pair: pair[0], reverse=True)
    return [image for _, image in ordered], dropped


def merge(batches: list[list[WebImage]], limit: int) -> list[WebImage]:
    """Interleave several ranked lists (one per query), skipping pictures already taken."""
    seen: set[str] = set()
    merged: list[WebImage] = []
    for round_ in range(max((len(b) for b in batches), default=0)):
        for batch in batches:
            if round_ < len(batch):
                image = batch[round_]
                identity = image_identity(image.image_url)
                if identity not in seen:
                    seen.add(identity)
                    merged.append(image)
    return merged[:limit]
