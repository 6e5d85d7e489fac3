"""Ready-made prompts a person picks in their MCP client: analyse a photo, build a routine, check an INCI list,
find a product. Each turns its arguments into the person's request plus the tools that answer it.

Argument values are the shopper's own words ('dark spots', 'under $40'); they are read with the same
vocabulary the tools use, and a value Shine cannot read is an invalid-params error naming the nearest values.
"""

from __future__ import annotations

import re
from typing import Annotated

from mcp.server.mcpserver import MCPServer
from mcp.shared.exceptions import MCPError
from mcp.types import INVALID_PARAMS
from pydantic import Field

from shine_mcp.services import Services
from shine_mcp.vocabulary import Kind, UnknownWord, lookup, suggest, understand

CONCERNS_TEXT = "Comma-separated, in your words: 'acne, dark spots', 'fine lines'."
SKIN_TYPE_TEXT = "normal, dry, oily, combination or sensitive."
BUDGET_TEXT = "The most to spend, e.g. '40' or 'under $60'."

# Prompt arguments (name -> vocabulary) that completion/complete and the readers below share.
ARGUMENT_KINDS: dict[str, Kind] = {"concerns": "concern", "skin_type": "skin_type", "category": "category"}


def _bad(message: str) -> MCPError:
    return MCPError(code=INVALID_PARAMS, message=message)


def _one(word: str | None, kind: Kind) -> str | None:
    if word is None or not word.strip():
        return None
    found = lookup(word, kind)
    if found is None:
        raise _bad(str(UnknownWord(word.strip(), kind, suggest(word, kind))))
    return found.means


def _many(words: str | None, kind: Kind) -> list[str]:
    parts = [part for part in re.split(r"[,;\n]+", words or "") if part.strip()]
    try:
        return understand(parts, kind)[0]
    except UnknownWord as unknown:
        raise _bad(str(unknown)) from unknown


def _amount(text: str | None) -> str | None:
    if text is None or not text.strip():
        return None
    found = re.search(r"\d+(?:[.,]\d{1,2})?", text)
    if found is None:
        raise _bad(f"budget {text.strip()!r} has no amount in it; give a number such as 40")
    return found.group().replace(",", ".")


def _words(values: list[str]) -> str:
    return ", ".join(v.replace("_", " ") for v in values)


def register(server: MCPServer, services: Services) -> None:
    @server.prompt(
        name="analyse_skin_photo",
        title="Analyse my skin from a photo",
        description="Measure the skin in a selfie (oiliness, redness, texture, pores, spots, tone) and suggest "
        "what to do next.",
    )
    def analyse_skin_photo(
        concerns: Annotated[
            str | None, Field(description="What to look at first (optional). " + CONCERNS_TEXT)
        ] = None,
        skin_type: Annotated[
            str | None, Field(description="Your skin type if you know it (optional): " + SKIN_TYPE_TEXT)
        ] = None,
    ) -> str:
        focus, kind = _many(concerns, "concern"), _one(skin_type, "skin_type")
        lines = [
            "Please analyse my skin from the photo I am attaching (or will attach next).",
            "Use analyze_skin on it. Tell me what it measured and how sure it is, what it could not measure "
            "and why, and ask me to retake the photo if it says the light or angle is not good enough.",
        ]
        if focus:
            lines.append(f"I care most about: {_words(focus)}.")
        if kind:
            lines.append(f"I think my skin is {kind}.")
        lines.append(
            "Then suggest products for what it found with recommend_products, using the report id. "
            "This is cosmetic guidance, not a diagnosis."
        )
        return "\n".join(lines)

    @server.prompt(
        name="build_routine",
        title="Build me a routine",
        description="A morning and evening routine from the shop's products for your concerns and budget.",
    )
    def build_routine(
        concerns: Annotated[str, Field(description="What the routine should work on. " + CONCERNS_TEXT)],
        budget: Annotated[
            str | None, Field(description="For the whole routine (optional). " + BUDGET_TEXT)
        ] = None,
        skin_type: Annotated[
            str | None, Field(description="Your skin type (optional): " + SKIN_TYPE_TEXT)
        ] = None,
    ) -> str:
        focus, amount, kind = _many(concerns, "concern"), _amount(budget), _one(skin_type, "skin_type")
        if not focus:
            raise _bad("concerns is empty; name at least one, e.g. 'acne' or 'dark spots'")
        request = f"Build me a skincare routine for {_words(focus)}"
        request += f", {kind} skin" if kind else ""
        request += f", spending at most {amount} in total." if amount else "."
        return (
            f"{request}\nUse get_profile first so my allergies and avoided ingredients are respected, then "
            "build_routine. Show the morning and evening steps with each product's price and why it is there, "
            "the schedule notes, and the total. Ask before adding anything to my cart."
        )

    @server.prompt(
        name="is_this_safe_for_me",
        title="Is this product safe for me?",
        description="Check a pasted ingredient (INCI) list against your allergies, sensitivities and pregnancy.",
    )
    def is_this_safe_for_me(
        ingredients: Annotated[
            str,
            Field(
                description="The ingredient list as printed on the pack or shop page (INCI), comma-separated."
            ),
        ],
        product_name: Annotated[str | None, Field(description="The product's name, if you have it.")] = None,
    ) -> str:
        text = ingredients.strip()
        if len(text) < 3:
            raise _bad("ingredients is empty; paste the ingredient list from the pack or the shop page")
        if len(text) > 20_000:
            raise _bad("ingredients is longer than 20,000 characters; paste only the ingredient list")
        name = f" ({product_name.strip()})" if product_name and product_name.strip() else ""
        return (
            f"Is this product{name} safe for me? Its ingredients:\n\n{text}\n\n"
            "Check it with check_ingredients (pass the list as ingredients_text): it uses my profile's "
            "allergies, sensitivities and pregnancy. Tell me plainly which ingredients are a problem for me "
            "and why, with the sources, and what is fine. If my profile is empty, ask me about allergies first."
        )

    @server.prompt(
        name="find_product",
        title="Find a product",
        description="Search the shop's catalog for a product type, ingredient or brand, with filters.",
    )
    def find_product(
        what: Annotated[
            str,
            Field(description="What you are looking for: 'fragrance-free moisturiser', 'vitamin C serum'."),
        ],
        category: Annotated[
            str | None,
            Field(description="Product category (optional): cleanser, serum, moisturiser, sunscreen, …"),
        ] = None,
        skin_type: Annotated[
            str | None, Field(description="For this skin type (optional): " + SKIN_TYPE_TEXT)
        ] = None,
        budget: Annotated[str | None, Field(description="Per product (optional). " + BUDGET_TEXT)] = None,
    ) -> str:
        if not what.strip():
            raise _bad("what is empty; say what you are looking for, e.g. 'vitamin C serum'")
        chosen, kind, amount = _one(category, "category"), _one(skin_type, "skin_type"), _amount(budget)
        filters = [
            f"category {chosen.replace('_', ' ')}" if chosen else "",
            f"{kind} skin" if kind else "",
            f"at most {amount} each" if amount else "",
        ]
        wanted = "; ".join(f for f in filters if f)
        return (
            f"Find me {what.strip()}" + (f" ({wanted})" if wanted else "") + ".\n"
            "Use search_products, then get_product for the one or two best so you can name their key "
            "ingredients. Quote prices as Shine gives them and say why each matches what I asked."
        )
