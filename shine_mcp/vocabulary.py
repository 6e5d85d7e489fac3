"""The closed vocabularies shared by the catalog, the tools and the knowledge base.

Kept in one leaf module (stdlib only) so every layer can import it without breaking the
dependency rule, and so a tool's JSON schema lists the allowed values.
"""

from typing import Literal, get_args

Category = Literal[
    "cleanser",
    "toner",
    "serum",
    "moisturiser",
    "sunscreen",
    "exfoliant",
    "mask",
    "eye_care",
    "spot_treatment",
]
SkinType = Literal["normal", "dry", "oily", "combination", "sensitive"]
Concern = Literal[
    "acne",
    "blackheads",
    "large_pores",
    "oiliness",
    "dryness",
    "dehydration",
    "redness",
    "sensitivity",
    "dark_spots",
    "uneven_tone",
    "dullness",
    "fine_lines",
    "uneven_texture",
    "dark_circles",
    "puffiness",
    "sun_protection",
]

CATEGORIES: tuple[str, ...] = get_args(Category)
SKIN_TYPES: tuple[str, ...] = get_args(SkinType)
CONCERNS: tuple[str, ...] = get_args(Concern)

# Words shoppers use for a category, in either spelling; the search tool maps them.
CATEGORY_ALIASES: dict[str, str] = {
    "cleanser": "cleanser",
    "cleansers": "cleanser",
    "face wash": "cleanser",
    "wash": "cleanser",
    "toner": "toner",
    "toners": "toner",
    "essence": "toner",
    "serum": "serum",
    "serums": "serum",
    "moisturiser": "moisturiser",
    "moisturisers": "moisturiser",
    "moisturizer": "moisturiser",
    "moisturizers": "moisturiser",
    "cream": "moisturiser",
    "lotion": "moisturiser",
    "sunscreen": "sunscreen",
    "sunscreens": "sunscreen",
    "spf": "sunscreen",
    "sunblock": "sunscreen",
    "exfoliant": "exfoliant",
    "exfoliator": "exfoliant",
    "peel": "exfoliant",
    "mask": "mask",
    "masks": "mask",
    "eye cream": "eye_care",
    "eye care": "eye_care",
    "spot treatment": "spot_treatment",
}

# Product claim tags a catalog entry may carry.
Tag = Literal["fragrance_free", "vegan", "cruelty_free", "alcohol_free", "non_comedogenic", "reef_safe"]
TAGS: tuple[str, ...] = get_args(Tag)
