"""Profile tools: what the shopper tells Shine about their skin and limits, their ratings, and their
right to see and erase everything Shine holds about them."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations
from pydantic import BaseModel, Field

from shine_mcp.advice.inputs import ConcernsArg, IngredientWords, SkinTypeArg, vocabulary_words
from shine_mcp.advice.needs import (
    PREFERENCES,
    VocabularyError,
    check_concerns,
    check_preferences,
    check_skin_type,
)
from shine_mcp.advice.season import PlaceError, country_code, season_for
from shine_mcp.auth import audit
from shine_mcp.auth.accounts import close_account, forget_merged_ids, get_user, merged_ids
from shine_mcp.auth.identity import current_user
from shine_mcp.clock import aware
from shine_mcp.knowledge import load_knowledge
from shine_mcp.money import Money, MoneyError, to_minor_rounded
from shine_mcp.orders.errors import OrderError
from shine_mcp.orders.privacy import erase_user_commerce, export_user_commerce
from shine_mcp.orders.service import Commerce
from shine_mcp.services import Services
from shine_mcp.store import profiles as store
from shine_mcp.store.catalog import get_product, main_currency
from shine_mcp.store.chat import delete_user_chats, export_user_chats
from shine_mcp.store.clicks import forget_user_clicks, user_clicks
from shine_mcp.store.photos import PhotoStore
from shine_mcp.store.skin_reports import delete_user_reports, list_reports
from shine_mcp.store.stream_events import forget_user_stream_events
from shine_mcp.tools._confirm import Confirm, needs_confirmation

READ_ONLY = ToolAnnotations(read_only_hint=True, open_world_hint=False)
WRITE = ToolAnnotations(
    read_only_hint=False, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)
ERASE = ToolAnnotations(destructive_hint=True, idempotent_hint=True, open_world_hint=False)
AUDIT_EXPORT_LIMIT = 10_000
Clearable = Literal[
    "skin_type",
    "concerns",
    "sensitivities",
    "avoid_ingredients",
    "budget",
    "country",
    "hemisphere",
    "preferences",
]


class AvoidMeaning(BaseModel):
    word: str
    means: list[str] = Field(description="What Shine excludes for it: ingredients or families (family:…).")
    matched_as_text: bool = Field(
        description="True when the word is not in the knowledge base: names containing it are excluded."
    )


class ProfileOut(BaseModel):
    user_id: str
    exists: bool = Field(description="False until update_profile is called once.")
    skin_type: str | None
    concerns: list[str]
    sensitivities: list[str]
    avoid_ingredients: list[str]
    avoid_meaning: list[AvoidMeaning] = Field(description="How each avoided word and sensitivity is applied.")
    budget: Money | None = Field(
        description="What you want to spend on a routine; no single product above it."
    )
    pregnant_or_nursing: bool
    preferences: list[str]
    country: str | None
    hemisphere: str | None
    season: str | None = Field(description="This month's season where you are, when known, and its effect.")
    updated_at: datetime | None
    notes: list[str] = Field(
        default_factory=list,
        description="What Shine read in the shopper's words that they should know (e.g. see a dermatologist).",
    )


class RatingOut(BaseModel):
    product_id: str
    product: str
    rating: int
    comment: str | None
    updated_at: datetime
    message: str


class MyData(BaseModel):
    user_id: str
    exported_at: datetime
    account: dict[str, Any] | None
    profile: dict[str, Any] | None
    feedback: list[dict[str, Any]]
    skin_reports: list[dict[str, Any]]
    chats: list[dict[str, Any]]
    chat_uploads: list[dict[str, Any]]
    commerce: dict[str, Any] = Field(description="Cart and orders with lines and refunds.")
    clicks: list[dict[str, Any]] = Field(
        default_factory=list,
        description="'Buy at <merchant>' links followed while signed in or from these chats, oldest first.",
    )
    security_events: list[dict[str, Any]] = Field(
        description="Sign-ins, client approvals and other audit entries about the caller (with the IP address)."
    )
    notice: str


class DeletedData(BaseModel):
    deleted: dict[str, int] = Field(description="What was removed, by kind.")
    kept: list[str] = Field(description="What stays and why (orders, for the accounts the law requires).")
    message: str


def _meaning(words: list[str]) -> list[AvoidMeaning]:
    kb = load_knowledge()
    out = []
    for word in words:
        keys = sorted(kb.expand_exclusions([word]))
        out.append(AvoidMeaning(word=word, means=keys, matched_as_text=not keys))
    return out


def _clean_words(words: list[str] | None) -> list[str] | None:
    if words is None:
        return None
    return list(dict.fromkeys(" ".join(w.split()) for w in words if w.strip()))


def _loosened(current: store.Profile | None, changes: dict[str, Any]) -> str | None:
    """What `changes` would stop protecting the shopper from (allergies and sensitivities no longer avoided,
    pregnancy no longer taken into account), in sentences; None when it removes no safety limit."""
    if current is None:
        return None
    said: list[str] = []
    for field, label in (
        ("avoid_ingredients", "allergies and ingredients you avoid"),
        ("sensitivities", "sensitivities"),
    ):
        if field in changes:
            kept = {w.casefold() for w in changes[field]}
            gone = [w for w in getattr(current, field) if w.casefold() not in kept]
            if gone:
                said.append(
                    f"This removes {', '.join(repr(w) for w in gone)} from your {label}: recommendations "
                    "and routines may include them again."
                )
    if current.pregnant_or_nursing and changes.get("pregnant_or_nursing") is False:
        said.append(
            "This records that you are no longer pregnant or nursing: retinoids and other actives not "
            "advised then may be recommended again."
        )
    return " ".join(said) or None


def _vocabulary_changes(
    skin_type: str | None, concerns: list[str] | None, preferences: list[str] | None
) -> tuple[dict[str, Any], list[str]]:
    """Skin type, concerns and preferences in the closed vocabulary, and the notes on the shopper's words
    ('melasma': see a dermatologist)."""
    changes: dict[str, Any] = {}
    notes: list[str] = []  # shopper words that need a word back ('melasma': see a dermatologist)
    try:
        if skin_type is not None:
            changes["skin_type"] = check_skin_type(vocabulary_words([skin_type], "skin_type")[0][0])
        if concerns is not None:
            understood, notes = vocabulary_words(concerns, "concern")
            changes["concerns"] = check_concerns(understood)
        if preferences is not None:
            changes["preferences"] = check_preferences(preferences)
    except VocabularyError as exc:
        raise ToolError(str(exc)) from exc
    return changes, notes


def _place(country: str | None, hemisphere: Literal["north", "south"] | None) -> dict[str, Any]:
    changes: dict[str, Any] = {}
    if country is not None:
        try:
            changes["country"] = country_code(country)
        except PlaceError as exc:
            raise ToolError(str(exc)) from exc
    if hemisphere is not None:
        changes["hemisphere"] = hemisphere
    return changes


def _clear(changes: dict[str, Any], clear: list[Clearable]) -> None:
    """Fields to reset to empty, never one the same call sets."""
    for name in clear:
        if name in changes or (name == "budget" and "budget_minor" in changes):
            raise ToolError(f"{name} is both set and cleared; do one or the other")
        if name == "budget":
            changes["budget_minor"], changes["currency"] = None, None
        elif name in ("skin_type", "country", "hemisphere"):
            changes[name] = None
        else:
            changes[name] = []


class ProfileTools:
    """The profile tools of one server: the shop (to end refill subscriptions on erasure) and the photos."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.shop = Commerce(services)  # ends refill subscriptions when a person erases their data
        self.photos = PhotoStore(self.services.settings.data_dir)

    async def _view(self, user_id: str, profile: store.Profile | None) -> ProfileOut:
        if profile is None:
            return ProfileOut(
                user_id=user_id, exists=False, skin_type=None, concerns=[], sensitivities=[],
                avoid_ingredients=[], avoid_meaning=[], budget=None, pregnant_or_nursing=False,
                preferences=[], country=None, hemisphere=None, season=None, updated_at=None,
            )  # fmt: skip
        season = season_for(profile.country, profile.hemisphere, datetime.now(UTC).date())
        return ProfileOut(
            user_id=user_id,
            exists=True,
            skin_type=profile.skin_type,
            concerns=profile.concerns,
            sensitivities=profile.sensitivities,
            avoid_ingredients=profile.avoid_ingredients,
            avoid_meaning=_meaning([*profile.avoid_ingredients, *profile.sensitivities]),
            budget=Money.maybe(profile.budget_minor, profile.currency),
            pregnant_or_nursing=profile.pregnant_or_nursing,
            preferences=profile.preferences,
            country=profile.country,
            hemisphere=profile.hemisphere,
            season=f"{season.name}: {season.reason}" if season else None,
            updated_at=aware(profile.updated_at),
        )

    async def get_profile(self, ctx: Context) -> ProfileOut:
        """The caller's skin profile: skin type, concerns, sensitivities, avoided ingredients (and how each
        is applied), budget, pregnancy, preferences and location for the season.

        Use it when the person asks what Shine knows about their skin, or before changing it.

        recommend_products, build_routine and check_ingredients use it; show it when asked what Shine knows."""
        caller = current_user(ctx, self.services.settings)
        return await self._view(caller.user_id, await store.get_profile(self.services.db, caller.user_id))

    async def update_profile(
        self,
        ctx: Context,
        skin_type: SkinTypeArg = None,
        concerns: ConcernsArg = None,
        sensitivities: Annotated[
            IngredientWords | None,
            Field(
                max_length=20,
                description="What irritates your skin: 'fragrance', 'essential oils'. Never recommended.",
            ),
        ] = None,
        avoid_ingredients: Annotated[
            IngredientWords | None,
            Field(
                max_length=30,
                description="Allergies and ingredients you avoid: 'lanolin', 'retinoids'. Never recommended.",
            ),
        ] = None,
        budget: Annotated[
            float | None,
            Field(le=100_000, description="What you want to spend on a routine, in the shop's currency."),
        ] = None,
        pregnant_or_nursing: Annotated[
            bool | None, Field(description="Excludes retinoids and other actives not advised.")
        ] = None,
        preferences: Annotated[
            list[str] | None, Field(max_length=6, description=f"Any of: {', '.join(PREFERENCES)}.")
        ] = None,
        country: Annotated[
            str | None, Field(max_length=60, description="Where you live (ISO code or name), for the season.")
        ] = None,
        hemisphere: Annotated[
            Literal["north", "south"] | None, Field(description="Instead of a country.")
        ] = None,
        clear: Annotated[list[Clearable] | None, Field(description="Fields to reset to empty.")] = None,
        confirm: Confirm = False,
    ) -> ProfileOut:
        """Save what the shopper tells you about their skin: only the fields given change, lists are
        replaced, `clear` empties fields. Ask before saving health details such as pregnancy.

        Use it when the shopper tells you their skin type, concerns, allergies, budget or anything
        else to remember.

        Avoided ingredients and sensitivities are hard limits for every recommendation and routine.
        Removing any of them, or pregnancy, saves nothing without confirm=true: the answer says what
        would no longer be avoided; ask the shopper, and only after their yes call again with confirm=true."""
        caller = current_user(ctx, self.services.settings)
        changes, notes = _vocabulary_changes(skin_type, concerns, preferences)
        changes |= await self._limits(sensitivities, avoid_ingredients, budget, pregnant_or_nursing)
        changes |= _place(country, hemisphere)
        _clear(changes, clear or [])
        if not changes:
            raise ToolError("nothing to change: pass at least one field (get_profile shows the current ones)")
        if confirm is not True:
            loosened = _loosened(await store.get_profile(self.services.db, caller.user_id), changes)
            if loosened:
                raise needs_confirmation("update_profile", loosened)
        profile = await store.save_profile(self.services.db, caller.user_id, changes)
        return (await self._view(caller.user_id, profile)).model_copy(update={"notes": notes})

    async def _limits(
        self,
        sensitivities: list[str] | None,
        avoid_ingredients: list[str] | None,
        budget: float | None,
        pregnant_or_nursing: bool | None,
    ) -> dict[str, Any]:
        """The hard limits: what to avoid, the budget in the shop's currency, pregnancy."""
        changes: dict[str, Any] = {}
        if (cleaned := _clean_words(sensitivities)) is not None:
            changes["sensitivities"] = cleaned
        if (cleaned := _clean_words(avoid_ingredients)) is not None:
            changes["avoid_ingredients"] = cleaned
        if budget is not None:
            if budget <= 0:
                raise ToolError("budget must be more than 0; to remove it, pass clear=['budget']")
            currency = await main_currency(self.services.db)
            try:
                changes["budget_minor"], changes["currency"] = to_minor_rounded(budget, currency), currency
            except MoneyError as exc:
                raise ToolError(str(exc)) from exc
        if pregnant_or_nursing is not None:
            changes["pregnant_or_nursing"] = pregnant_or_nursing
        return changes

    async def rate_product(
        self,
        ctx: Context,
        product_id: Annotated[str, Field(min_length=1, max_length=60, description="prd_… from the catalog.")],
        rating: Annotated[int, Field(ge=1, le=5, description="1 (did not suit me) to 5 (loved it).")],
        comment: Annotated[str | None, Field(max_length=1000)] = None,
    ) -> RatingOut:
        """Rate a product the shopper has used (1-5, optional comment); rating again replaces it.

        Use it when the shopper says how a product they used worked for them.

        Ratings teach recommend_products what people with similar skin liked; a product rated 1-2
        is not recommended to that person again."""
        caller = current_user(ctx, self.services.settings)
        product = await get_product(self.services.db, product_id.strip())
        if product is None:
            raise ToolError(f"no product with id '{product_id}'; search_products lists product ids")
        saved = await store.rate(
            self.services.db, caller.user_id, product.id, rating, (comment or "").strip() or None
        )
        return RatingOut(
            product_id=product.id,
            product=f"{product.brand} {product.name}".strip(),
            rating=saved.rating,
            comment=saved.comment,
            updated_at=saved.updated_at,
            message="Thanks: future recommendations take this into account."
            if rating >= 3
            else "Thanks: this product will not be recommended to you again.",
        )

    async def export_my_data(self, ctx: Context) -> MyData:
        """Everything Shine holds about the caller, as JSON: account, profile, ratings and views, skin
        reports, chats, uploaded photos' details, cart and orders.

        Use it when someone asks what Shine knows about them or wants a copy of their data."""
        caller = current_user(ctx, self.services.settings)
        user = None if caller.is_guest else await get_user(self.services.db, caller.user_id)
        profile_data = await store.export_profile_data(self.services.db, caller.user_id)
        reports = await list_reports(self.services.db, caller.user_id, limit=100_000)
        chats = await export_user_chats(self.services.db, caller.user_id)
        commerce = await export_user_commerce(self.services.db, caller.user_id)
        security = await audit.events(self.services.db, actor_id=caller.user_id, limit=AUDIT_EXPORT_LIMIT)
        return MyData(
            user_id=caller.user_id,
            exported_at=datetime.now(UTC),
            account=None
            if user is None
            else user.model_dump(
                mode="json", include={"id", "email", "name", "picture", "created_at", "last_sign_in_at"}
            ),
            profile=profile_data["profile"],
            feedback=profile_data["feedback"],
            skin_reports=[
                {
                    "id": r.id,
                    "created_at": r.created.isoformat(),
                    "analysis": r.analysis,
                    "photo_kept": r.photo_path is not None,
                }
                for r in reports
            ],
            chats=chats["chats"],
            chat_uploads=chats["uploads"],
            commerce=commerce,
            clicks=await user_clicks(self.services.db, caller.user_id),
            security_events=[
                {
                    "at": aware(e.at).isoformat(),
                    "action": e.action,
                    "client_id": e.client_id,
                    "ip": e.ip,
                    "detail": e.detail,
                }
                for e in security
            ],
            notice="Kept photos are not embedded here; get_skin_report and the chat show them to you.",
        )

    async def _erase(self, user_id: str) -> tuple[dict[str, int], list[str]]:
        """Everything held about a person, gone, under their id and every guest id merged into it at
        sign-in; what must stay (orders, for the books) and why."""
        db = self.services.db
        aliases = await merged_ids(db, user_id)
        deleted: dict[str, int] = {}
        addresses_kept = 0
        # Refill subscriptions stop at the payment provider first: if it cannot be reached, nothing is
        # deleted yet and the person can try again (otherwise they would go on being charged).
        subscriptions_ended = memberships_ended = 0
        try:
            for who in (user_id, *aliases):
                subscriptions_ended += await self.shop.subscriptions.end_all(who)
                memberships_ended += await self.shop.membership.end_all(who)
        except OrderError as exc:
            raise ToolError(exc.message) from exc
        deleted["subscriptions_ended"] = subscriptions_ended
        deleted["memberships_ended"] = memberships_ended
        for who in (user_id, *aliases):
            found = await store.delete_user_profile_data(db, who)
            found["skin_reports"] = await delete_user_reports(db, self.photos, who)
            found["clicks_unlinked"] = await forget_user_clicks(db, who)  # before the chats they name go
            found["stream_events"] = await forget_user_stream_events(db, who)
            found |= await delete_user_chats(db, who)
            commerce = await erase_user_commerce(db, who)
            found["carts"] = commerce["carts_deleted"]
            found["orders_unlinked"] = commerce["orders_anonymised"]
            addresses_kept += commerce["addresses_kept_until_shipped"]
            for kind, count in found.items():
                deleted[kind] = deleted.get(kind, 0) + count
        deleted["merged_guest_ids"] = await forget_merged_ids(db, user_id, aliases)
        kept = ["Orders, without your account, email or refund reasons: shops must keep sales records."]
        if addresses_kept:
            kept.append("The shipping address of an order not yet shipped, until it ships.")
        return deleted, kept

    async def delete_my_data(
        self,
        ctx: Context,
        confirm: Annotated[
            bool, Field(description="Must be true: the person confirmed they want everything deleted.")
        ] = False,
    ) -> DeletedData:
        """Delete everything Shine holds about the caller: profile, ratings, skin reports and kept photos,
        chats and uploads, cart. Orders stay for the shop's accounts, without the link to this person.

        Use it when the person asks Shine to forget them but keep their sign-in account.

        Irreversible: confirm with the person first, then call with confirm=true."""
        caller = current_user(ctx, self.services.settings)
        if confirm is not True:
            raise ToolError(
                "this permanently deletes your profile, ratings, skin reports and photos, chats and cart; "
                "ask the person to confirm, then call delete_my_data with confirm=true"
            )
        deleted, kept = await self._erase(caller.user_id)
        if caller.is_guest:
            kept.append("This guest session (an id with nothing attached), until it expires or you close it.")
            kept.append("The security log entry of this deletion (the guest id, no name or email).")
        else:
            kept.append("Your sign-in account (email and name): closing your account removes it too.")
            kept.append(
                "The security log of your sign-ins and of this deletion, which protects your account."
            )
        return DeletedData(deleted=deleted, kept=kept, message="Your data has been deleted.")

    async def close_my_account(
        self,
        ctx: Context,
        confirm: Annotated[
            bool,
            Field(description="Must be true: the person confirmed they want their account closed."),
        ] = False,
    ) -> DeletedData:
        """Close the caller's account: everything delete_my_data deletes, then the sign-in account itself.
        Every web session ends and every connected app (MCP client) loses access, this one included.

        Use it when the person wants to leave Shine altogether.

        Irreversible: confirm with the person first, then call with confirm=true. Signing in again later
        starts a new, empty account."""
        caller = current_user(ctx, self.services.settings)
        if confirm is not True:
            raise ToolError(
                "this permanently deletes your data and your sign-in account, and signs you out everywhere; "
                "ask the person to confirm, then call close_my_account with confirm=true"
            )
        deleted, kept = await self._erase(caller.user_id)
        deleted |= await close_account(self.services.db, caller.user_id, now=datetime.now(UTC))
        if caller.is_guest:
            message = "Your data has been deleted and this guest session has ended."
        elif deleted["account"]:
            message = (
                "Your account is closed: your data is deleted, you are signed out everywhere and connected "
                "apps lost access. Signing in again starts a new, empty account."
            )
        else:
            message = "Your data has been deleted. This connection has no sign-in account to close."
        kept.append(
            "The security log of your sign-ins and of this closure (account id, app and address, no name or "
            "email): it protects the shop against abuse."
        )
        return DeletedData(deleted=deleted, kept=kept, message=message)


def register(server: MCPServer, services: Services) -> None:
    tools = ProfileTools(services)
    server.tool(annotations=READ_ONLY)(tools.get_profile)
    server.tool(annotations=WRITE)(tools.update_profile)
    server.tool(annotations=WRITE)(tools.rate_product)
    server.tool(annotations=READ_ONLY)(tools.export_my_data)
    server.tool(annotations=ERASE)(tools.delete_my_data)
    server.tool(annotations=ERASE)(tools.close_my_account)
