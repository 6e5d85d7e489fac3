"""`check_ingredients`: what clashes, what the shopper avoids, and what to be careful with, for products of
the catalog and ingredient lists pasted from anywhere. Every finding cites its source."""

from __future__ import annotations

from typing import Annotated

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.auth.identity import current_user
from shine_mcp.knowledge import InteractionRule, KnowledgeBase, load_knowledge, parse_inci
from shine_mcp.services import Services
from shine_mcp.store.catalog import get_product
from shine_mcp.store.profiles import Profile, get_profile

MAX_PRODUCTS = 10
PASTED = "the ingredients you listed"
# Most serious first: a reader (or a reply cut at ten lines) meets these before the rest.
CAUTION_ORDER = ("pregnancy", "allergen", "photosensitivity", "sensitive_skin", "irritation")
ALWAYS_SHOWN = frozenset({"photosensitivity", "allergen", "irritation"})
GUIDANCE = (
    "Cosmetic guidance from published sources, not medical advice. Patch test new products and ask a "
    "doctor or pharmacist about anything prescribed, or if you are pregnant."
)


class SourceRef(BaseModel):
    title: str
    url: str


class CheckedItem(BaseModel):
    label: str = Field(description="The product's brand and name, or 'the ingredients you listed'.")
    product_id: str | None
    recognised: int = Field(description="Ingredients found in Shine's knowledge base.")
    unrecognised: list[str] = Field(description="Names not in the knowledge base (checked as text only).")


class ClashFound(BaseModel):
    summary: str = Field(description="One sentence for the shopper.")
    between: list[str] = Field(description="The two items, or the same item twice for a clash inside it.")
    ingredients: list[str]
    severity: str = Field(
        description="avoid_same_slot: not in the same routine slot; caution: watch for irritation."
    )
    advice: str = Field(description="What to do instead, e.g. alternate nights or split morning/evening.")
    why: str
    source: SourceRef


class AvoidedFound(BaseModel):
    summary: str = Field(description="One sentence for the shopper.")
    item: str
    ingredient: str
    because: str = Field(description="Which of the shopper's words it matches.")


class CautionFound(BaseModel):
    summary: str = Field(description="One sentence for the shopper.")
    item: str
    ingredient: str
    kind: str
    advice: str
    source: SourceRef


class IngredientCheck(BaseModel):
    items: list[CheckedItem]
    clashes: list[ClashFound]
    avoided: list[AvoidedFound]
    cautions: list[CautionFound]
    notice: str


def _source(kb: KnowledgeBase, source_id: str) -> SourceRef:
    source = kb.source(source_id)
    return SourceRef(title=source.title, url=source.url)


def _avoided(kb: KnowledgeBase, label: str, names: list[str], avoid: list[str]) -> list[AvoidedFound]:
    found: list[AvoidedFound] = []
    for word in avoid:
        keys, texts = kb.exclusion_terms([word])
        for name in names:
            lowered = name.lower()
            if keys & {k.lower() for k in kb.active_keys(name)} or any(t in lowered for t in texts):
                found.append(
                    AvoidedFound(
                        summary=f"{label} contains {name}, which you avoid ({word}).",
                        item=label,
                        ingredient=name,
                        because=word,
                    )
                )
    return found


def _cautions(
    kb: KnowledgeBase, label: str, names: list[str], *, pregnant: bool, sensitive: bool
) -> list[CautionFound]:
    shown = (
        set(ALWAYS_SHOWN)
        | ({"pregnancy"} if pregnant else set())
        | ({"sensitive_skin"} if sensitive else set())
    )
    found: list[CautionFound] = []
    for name in names:
        kinds: set[str] = set()  # an ingredient's own caution and its family's may say the same thing
        for caution in kb.cautions(name):
            if caution.kind in shown and caution.kind not in kinds:
                kinds.add(caution.kind)
                found.append(
                    CautionFound(
                        summary=f"{name} ({label}): {caution.advice}",
                        item=label,
                        ingredient=name,
                        kind=caution.kind,
                        advice=caution.advice,
                        source=_source(kb, caution.source_id),
                    )
                )
    return found


def check(
    kb: KnowledgeBase,
    lists: list[tuple[str, str | None, list[str]]],
    *,
    avoid: list[str],
    pregnant: bool,
    sensitive: bool,
) -> IngredientCheck:
    """`lists`: (label, product id, ingredient names) per item."""
    items, clashes, avoided, cautions = [], [], [], []
    for index, (label, product_id, names) in enumerate(lists):
        known = [n for n in names if kb.lookup(n) or kb.guess_family(n)]
        items.append(
            CheckedItem(
                label=label,
                product_id=product_id,
                recognised=len(known),
                unrecognised=[n for n in names if n not in known][:30],
            )
        )
        # Inside one formula only the firm rules count: formulators balance mild acid pairs on purpose.
        for clash in kb.clashes(names, names):
            if clash.rule.severity == "avoid_same_slot":
                clashes.append(_clash(kb, label, label, clash.a_ingredient, clash.b_ingredient, clash.rule))
        for other_label, _, other_names in lists[index + 1 :]:
            for clash in kb.clashes(names, other_names):
                clashes.append(
                    _clash(kb, label, other_label, clash.a_ingredient, clash.b_ingredient, clash.rule)
                )
        avoided += _avoided(kb, label, names, avoid)
        cautions += _cautions(kb, label, names, pregnant=pregnant, sensitive=sensitive)
    cautions.sort(
        key=lambda c: CAUTION_ORDER.index(c.kind) if c.kind in CAUTION_ORDER else len(CAUTION_ORDER)
    )
    return IngredientCheck(items=items, clashes=clashes, avoided=avoided, cautions=cautions, notice=GUIDANCE)


def _clash(kb: KnowledgeBase, a: str, b: str, a_name: str, b_name: str, rule: InteractionRule) -> ClashFound:
    where = f"in {a}" if a == b else f"in {a} and {b}"
    return ClashFound(
        summary=f"{a_name} and {b_name} {where}: {rule.advice}",
        between=[a, b],
        ingredients=[a_name, b_name],
        severity=rule.severity,
        advice=rule.advice,
        why=rule.why,
        source=_source(kb, rule.source_id),
    )


class IngredientTools:
    """The ingredient tool of one server; the findings are `check`, over the knowledge base."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def check_ingredients(
        self,
        ctx: Context,
        product_ids: Annotated[
            list[str] | None,
            Field(max_length=MAX_PRODUCTS, description="Catalog products to check together (prd_…)."),
        ] = None,
        ingredients_text: Annotated[
            str | None,
            Field(max_length=20_000, description="An INCI list pasted from a pack or a web page."),
        ] = None,
        avoid_ingredients: Annotated[
            list[str] | None,
            Field(
                max_length=30,
                description="Ingredients or families the shopper avoids: 'fragrance', 'retinoids'. "
                "Default: the avoided ingredients and sensitivities in their profile.",
            ),
        ] = None,
        pregnant_or_nursing: Annotated[
            bool | None, Field(description="Show pregnancy cautions. Default: from the profile.")
        ] = None,
        sensitive_skin: Annotated[
            bool | None, Field(description="Show cautions for sensitive skin. Default: from the profile.")
        ] = None,
    ) -> IngredientCheck:
        """Check products and/or a pasted ingredient list for actives that should not share a routine slot,
        ingredients the shopper avoids, and cautions (sun sensitivity, pregnancy, sensitive skin).

        Use it before recommending products to use together, or when someone asks "is this safe with…".
        Each clash says what to do instead (alternate nights, morning/evening split) and cites a source."""
        if not product_ids and not (ingredients_text and ingredients_text.strip()):
            raise ToolError("give product_ids (from search_products) or ingredients_text to check")
        kb = load_knowledge()
        lists = await self._lists(product_ids or [], ingredients_text)
        profile = await self._profile_of(ctx)
        if avoid_ingredients is None and profile is not None:
            avoid_ingredients = [*profile.avoid_ingredients, *profile.sensitivities]
        if pregnant_or_nursing is None:
            pregnant_or_nursing = bool(profile and profile.pregnant_or_nursing)
        if sensitive_skin is None:
            sensitive_skin = bool(profile and (profile.skin_type == "sensitive" or profile.sensitivities))
        avoid = [w.strip() for w in avoid_ingredients or [] if w.strip()]
        return check(kb, lists, avoid=avoid, pregnant=pregnant_or_nursing, sensitive=sensitive_skin)

    async def _lists(
        self, product_ids: list[str], ingredients_text: str | None
    ) -> list[tuple[str, str | None, list[str]]]:
        """(label, product id, ingredient names) of each catalog product, then of the pasted list."""
        lists: list[tuple[str, str | None, list[str]]] = []
        for product_id in dict.fromkeys(product_ids):
            product = await get_product(self.services.db, product_id)
            if product is None:
                raise ToolError(
                    f"no product {product_id!r} in the catalog; search_products lists product ids"
                )
            names = product.ingredients or [p.name for p in parse_inci(product.ingredients_text)]
            lists.append((f"{product.brand} {product.name}".strip(), product.id, names))
        if ingredients_text and ingredients_text.strip():
            names = [p.name for p in parse_inci(ingredients_text) if not p.may_contain]
            if not names:
                raise ToolError(
                    "no ingredient names could be read from ingredients_text; paste the INCI list"
                )
            lists.append((PASTED, None, names))
        return lists

    async def _profile_of(self, ctx: Context) -> Profile | None:
        """The caller's profile, or None for an anonymous reader (ingredient checks need no sign-in)."""
        try:
            caller = current_user(ctx, self.services.settings)
        except ToolError:
            return None
        return await get_profile(self.services.db, caller.user_id)


def register(server: MCPServer, services: Services) -> None:
    tools = IngredientTools(services)
    server.tool(annotations=ToolAnnotations(read_only_hint=True, open_world_hint=False))(
        tools.check_ingredients
    )
