"""`completion/complete`: product ids for `shine://products/{product_id}` (by id or by brand and name), and
the vocabulary (concerns, skin types, categories) for the prompts' arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import (
    INVALID_PARAMS,
    Completion,
    CompletionArgument,
    CompletionContext,
    PromptReference,
    ResourceTemplateReference,
)

from shine_mcp.resources.prompts import ARGUMENT_KINDS
from shine_mcp.services import Services
from shine_mcp.store.catalog import product_ids_like
from shine_mcp.vocabulary import ALLOWED, SYNONYMS, Kind, normalise, suggest

PRODUCT_TEMPLATE = "shine://products/{product_id}"
MAX_VALUES = 100  # the spec's cap per answer
LIST_ARGUMENTS = frozenset({"concerns"})  # comma-separated: complete the last item, keep the ones before


def vocabulary_values(typed: str, kind: Kind) -> list[str]:
    """Values of a vocabulary for what has been typed: values starting with it, then values a shopper's word
    starting with it means ('wrink' -> fine_lines), then the nearest meanings for a typo. All for nothing typed."""
    allowed = ALLOWED[kind]
    word = normalise(typed)
    if not word:
        return list(allowed)
    found = [v for v in allowed if normalise(v).startswith(word)]
    found += [s.means for phrase, s in SYNONYMS[kind].items() if phrase.startswith(word)]
    found += [v for v in allowed if any(part.startswith(word) for part in normalise(v).split())]
    if not found:
        found = suggest(typed, kind)
    return list(dict.fromkeys(found))


def _list_values(typed: str, kind: Kind) -> list[str]:
    *before, last = typed.split(",")
    chosen = [part.strip() for part in before if part.strip()]
    head = "".join(f"{part}, " for part in chosen)
    return [head + value for value in vocabulary_values(last, kind) if value not in chosen]


CompletionHandler = Callable[
    [PromptReference | ResourceTemplateReference, CompletionArgument, CompletionContext | None],
    Awaitable[Completion | None],
]


def register(server: MCPServer, services: Services) -> None:
    # The SDK's decorator has no annotations; this is the type it has.
    on_completion: Callable[[CompletionHandler], CompletionHandler] = server.completion()

    @on_completion
    async def complete(
        ref: PromptReference | ResourceTemplateReference,
        argument: CompletionArgument,
        context: CompletionContext | None,
    ) -> Completion | None:
        if isinstance(ref, ResourceTemplateReference):
            templates = {t.uri_template for t in await server.list_resource_templates()}
            if ref.uri not in templates:
                raise MCPError(code=INVALID_PARAMS, message=f"no resource template {ref.uri!r}")
            if ref.uri != PRODUCT_TEMPLATE or argument.name != "product_id":
                return None
            ids, total = await product_ids_like(services.db, argument.value, MAX_VALUES)
            return Completion(values=ids, total=total, has_more=total > len(ids))
        prompt = next((p for p in await server.list_prompts() if p.name == ref.name), None)
        if prompt is None:
            raise MCPError(
                code=INVALID_PARAMS, message=f"no prompt named {ref.name!r}; prompts/list lists them"
            )
        kind = ARGUMENT_KINDS.get(argument.name)
        if kind is None or argument.name not in {a.name for a in prompt.arguments or []}:
            return None
        if argument.name in LIST_ARGUMENTS:
            values = _list_values(argument.value, kind)
        else:
            values = vocabulary_values(argument.value, kind)
        return Completion(values=values[:MAX_VALUES], total=len(values), has_more=len(values) > MAX_VALUES)
