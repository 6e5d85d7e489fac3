"""Check the bundled demo catalog (shine_mcp/store/data/demo_catalog.json) for shape and honesty.

Shape: the Shine JSON format, closed vocabularies, unique handles, prices as strings with two decimals.
Honesty: every claim a product makes must be supported by its printed INCI list, e.g. a
"fragrance_free" tag means no parfum, essential oil or labelled fragrance allergen; a concern such as
"acne" needs a recognised active; a sunscreen needs a UV filter and an SPF in its name.

Stdlib only. Run: `.venv/bin/python scripts/check_demo_catalog.py [path]`; exits 1 listing every
failure as `handle: rule`, or prints the per-category counts and exits 0.
"""

from __future__ import annotations

import json
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PATH = ROOT / "shine_mcp" / "store" / "data" / "demo_catalog.json"
sys.path.insert(0, str(ROOT))

from shine_mcp.vocabulary import CATEGORIES, CONCERNS, SKIN_TYPES, TAGS  # noqa: E402

FORMAT = "shine-catalog/1"
MIN_PRODUCTS = 220
MIN_PER_CATEGORY = 18
MIN_BRANDS = 35
PRICE_FLOOR, PRICE_CEILING = Decimal("6.00"), Decimal("120.00")
FIELDS = (
    "handle", "brand", "name", "category", "description", "price", "currency", "size", "url", "image_url",
    "rating", "review_count", "stock", "ingredients", "skin_types", "concerns", "tags",
)  # fmt: skip
HANDLE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PRICE = re.compile(r"^\d+\.\d{2}$")
SIZE = re.compile(r"^\d+(\.\d+)? (ml|g)$|^\d+ (patches|pads|sheets)$")

# Fragrance: parfum and its synonyms, the EU-labelled fragrance allergens, and essential oils
# (an "oil" from an aromatic genus; fixed seed and kernel oils are not essential oils).
FRAGRANCE_WORDS = ("parfum", "fragrance", "perfume", "aroma", "essential oil")
FRAGRANCE_ALLERGENS = (
    "linalool", "limonene", "geraniol", "citronellol", "citral", "eugenol", "coumarin", "benzyl benzoate",
    "benzyl salicylate", "benzyl cinnamate", "cinnamal", "cinnamyl alcohol", "hexyl cinnamal",
    "amyl cinnamal", "farnesol", "hydroxycitronellal", "anise alcohol", "alpha-isomethyl ionone",
    "butylphenyl methylpropional", "evernia prunastri", "methyl 2-octynoate",
)  # fmt: skip
AROMATIC_GENERA = (
    "lavandula", "citrus", "rosmarinus", "mentha", "eucalyptus", "melaleuca", "pelargonium", "rosa damascena",
    "cymbopogon", "santalum", "jasminum", "cananga", "boswellia", "salvia sclarea", "anthemis", "chamomilla",
    "cupressus", "juniperus", "thymus", "origanum", "cinnamomum", "eugenia caryophyllus", "pogostemon",
    "vetiveria", "litsea", "ocimum", "melissa", "pinus", "abies", "cedrus", "zingiber", "daucus carota",
)  # fmt: skip

UV_FILTERS = (
    "zinc oxide", "titanium dioxide", "homosalate", "octisalate", "ethylhexyl salicylate", "avobenzone",
    "butyl methoxydibenzoylmethane", "octocrylene", "oxybenzone", "benzophenone-3", "octinoxate",
    "ethylhexyl methoxycinnamate", "bis-ethylhexyloxyphenol methoxyphenyl triazine", "ethylhexyl triazone",
    "diethylamino hydroxybenzoyl hexyl benzoate", "methylene bis-benzotriazolyl tetramethylbutylphenol",
    "drometrizole trisiloxane", "terephthalylidene dicamphor sulfonic acid", "phenylbenzimidazole sulfonic acid",
    "ensulizole", "diethylhexyl butamido triazone", "tris-biphenyl triazine", "polysilicone-15",
    "isoamyl p-methoxycinnamate", "meradimate", "menthyl anthranilate",
)  # fmt: skip
NOT_REEF_SAFE = ("oxybenzone", "benzophenone-3", "octinoxate", "ethylhexyl methoxycinnamate")

# Regular expressions matched against each ingredient (lower case).
_AHA_BHA_PHA = (
    r"glycolic acid", r"lactic acid", r"mandelic acid", r"salicylic acid", r"betaine salicylate",
    r"gluconolactone", r"lactobionic acid", r"malic acid", r"tartaric acid",
)  # fmt: skip
_RETINOIDS = (r"\bretinol\b", r"\bretinal\b", r"retinyl", r"hydroxypinacolone retinoate", r"adapalene")
_VITAMIN_C = (r"ascorb",)
_SOOTHING = (
    r"centella asiatica", r"madecass", r"asiaticoside", r"asiatic acid", r"allantoin", r"panthenol",
    r"avena sativa", r"colloidal oatmeal", r"bisabolol", r"azelaic acid", r"niacinamide", r"ceramide",
    r"glycyrrh", r"camellia sinensis", r"aloe barbadensis", r"beta-glucan", r"artemisia", r"houttuynia cordata",
    r"ectoin", r"\bsulfur\b", r"calendula officinalis", r"hydroxyphenyl propamidobenzoic acid",
)  # fmt: skip
_BRIGHTENING = (
    r"niacinamide", *_VITAMIN_C, r"azelaic acid", r"tranexamic acid", r"arbutin", r"kojic acid",
    r"glycyrrhiza (glabra|inflata)", r"glabridin", *_RETINOIDS, r"glycolic acid", r"lactic acid",
    r"mandelic acid", r"hexylresorcinol", r"thiazolyl resorcinol", r"cysteamine",
)  # fmt: skip
CONCERN_ACTIVES: dict[str, tuple[str, ...]] = {
    "acne": (
        r"salicylic acid",
        r"betaine salicylate",
        r"benzoyl peroxide",
        *_RETINOIDS,
        r"azelaic acid",
        r"niacinamide",
        r"\bsulfur\b",
        r"zinc pca",
        r"glycolic acid",
        r"lactic acid",
        r"mandelic acid",
        r"melaleuca alternifolia",
        r"hydrocolloid",
        r"salix alba",
    ),
    "blackheads": (
        r"salicylic acid",
        r"betaine salicylate",
        r"salix alba",
        r"glycolic acid",
        r"lactic acid",
        r"mandelic acid",
        r"gluconolactone",
        *_RETINOIDS,
        r"kaolin",
        r"bentonite",
        r"charcoal",
    ),
    "large_pores": (
        r"niacinamide",
        r"salicylic acid",
        r"betaine salicylate",
        *_RETINOIDS,
        r"kaolin",
        r"bentonite",
        r"glycolic acid",
        r"lactic acid",
        r"mandelic acid",
        r"gluconolactone",
        r"zinc pca",
        r"charcoal",
    ),
    "oiliness": (
        r"niacinamide",
        r"zinc pca",
        r"zinc gluconate",
        r"kaolin",
        r"bentonite",
        r"salicylic acid",
        r"betaine salicylate",
        r"^silica\b",
        r"\bsulfur\b",
        r"charcoal",
        r"perlite",
    ),
    "dryness": (
        r"glycerin",
        r"hyaluron",
        r"ceramide",
        r"squalane",
        r"petrolatum",
        r"\burea\b",
        r"butyrospermum parkii",
        r"cholesterol",
        r"mineral oil",
        r"paraffinum liquidum",
        r"lanolin",
        r"dimethicone$",
    ),
    "dehydration": (
        r"glycerin",
        r"hyaluron",
        r"panthenol",
        r"\burea\b",
        r"sodium pca",
        r"^betaine$",
        r"polyglutamic acid",
        r"trehalose",
    ),
    "redness": _SOOTHING,
    "sensitivity": _SOOTHING,
    "dark_spots": _BRIGHTENING,
    "uneven_tone": _BRIGHTENING,
    "dullness": (
        *_VITAMIN_C,
        *_AHA_BHA_PHA,
        r"niacinamide",
        *_RETINOIDS,
        r"papain",
        r"bromelain",
        r"galactomyces",
        r"arbutin",
        r"tranexamic acid",
        r"glycyrrhiza glabra",
    ),
    "fine_lines": (
        *_RETINOIDS,
        r"peptide",
        r"palmitoyl",
        *_VITAMIN_C,
        r"bakuchiol",
        r"glycolic acid",
        r"lactic acid",
        r"niacinamide",
    ),  # fmt: skip
    "uneven_texture": (*_AHA_BHA_PHA, *_RETINOIDS, r"\burea\b", r"papain", r"bromelain", r"azelaic acid"),
    "dark_circles": (
        r"caffeine",
        r"phytonadione",
        r"niacinamide",
        *_VITAMIN_C,
        *_RETINOIDS,
        r"peptide",
        r"palmitoyl",
        r"tranexamic acid",
        r"chrysin",
        r"hesperidin methyl chalcone",
        r"glycyrrhiza glabra",
    ),
    "puffiness": (
        r"caffeine",
        r"peptide",
        r"hesperidin methyl chalcone",
        r"aesculus",
        r"escin",
        r"camellia sinensis",
        r"coffea arabica",
        r"cucumis sativus",
    ),
    "sun_protection": tuple(re.escape(f) for f in UV_FILTERS),
}
EXFOLIATING_ACIDS = _AHA_BHA_PHA + (r"capryloyl salicylic acid",)
ANIMAL_DERIVED = (
    r"cera alba", r"beeswax", r"lanolin", r"honey", r"^mel\b", r"propolis", r"royal jelly", r"carmine",
    r"ci 75470", r"snail", r"collagen", r"keratin", r"\bsilk\b", r"sericin", r"guanine", r"shellac", r"chitosan",
    r"tallow", r"\bmilk\b(?! thistle)", r"elastin", r"artemia", r"caviar",
)  # fmt: skip
DRYING_ALCOHOLS = (
    r"^(alcohol|ethanol)$", r"^alcohol\s*\(", r"alcohol denat", r"^sd alcohol", r"denatured alcohol",
    r"^isopropyl alcohol",
)  # fmt: skip
COMEDOGENIC = (r"cocos nucifera (\(coconut\) )?oil", r"isopropyl myristate", r"isopropyl isostearate",
               r"laureth-4\b", r"theobroma cacao", r"myristyl myristate")  # fmt: skip
DISEASE_CLAIMS = re.compile(
    r"\b(cures?|heals?|treats?|eliminates?|eczema|rosacea|psoriasis|dermatitis)\b", re.I
)
SENTENCE_END = re.compile(r"[.!?](?=\s|$)")

Problem = tuple[str, str]


def ingredients(product: dict[str, Any]) -> list[str]:
    """The INCI list split on top-level commas (commas inside brackets, e.g. "1,2-Hexanediol", stay)."""
    text = product["ingredients"]
    if isinstance(text, list):
        return [str(item).strip().lower() for item in text]
    text = str(text)
    items, depth, current = [], 0, ""
    for i, char in enumerate(text):
        depth += (char in "([") - (char in ")]")
        if char == "," and depth == 0 and not text[i + 1 : i + 2].isdigit():
            items.append(current)
            current = ""
        else:
            current += char
    items.append(current)
    return [item.strip().lower() for item in items if item.strip()]


def matching(items: Iterable[str], patterns: Iterable[str]) -> list[str]:
    compiled = [re.compile(p) for p in patterns]
    return [item for item in items if any(c.search(item) for c in compiled)]


def fragrance_markers(items: list[str]) -> list[str]:
    found = [i for i in items if any(w in i for w in FRAGRANCE_WORDS)]
    found += [
        i for i in items if any(re.search(rf"(^|[\s(]){re.escape(a)}\b", i) for a in FRAGRANCE_ALLERGENS)
    ]
    found += [
        i
        for i in items
        if re.search(r"\boil\b", i)
        and any(g in i for g in AROMATIC_GENERA)
        and not re.search(r"(seed|kernel|nut) oil", i)
    ]
    return sorted(set(found))


def check_product(p: dict[str, Any]) -> list[str]:
    """Every rule this product breaks, as a short sentence."""
    out: list[str] = []
    missing = [f for f in FIELDS if f not in p]
    extra = [f for f in p if f not in FIELDS]
    if missing or extra:
        return [f"fields: missing {missing}, unexpected {extra}"]
    if not isinstance(p["handle"], str) or not HANDLE.match(p["handle"]):
        out.append("handle is not a lower-case slug")
    for field in ("brand", "name", "description", "ingredients"):
        if not isinstance(p[field], str) or not p[field].strip():
            out.append(f"{field} is empty")
    if p["category"] not in CATEGORIES:
        out.append(f"category {p['category']!r} is not in the vocabulary")
    for field, allowed in (("skin_types", SKIN_TYPES), ("concerns", CONCERNS), ("tags", TAGS)):
        values = p[field]
        if not isinstance(values, list) or len(set(values)) != len(values):
            out.append(f"{field} must be a list without repeats")
        elif bad := [v for v in values if v not in allowed]:
            out.append(f"{field} {bad} not in the vocabulary")
    if not p["skin_types"]:
        out.append("skin_types is empty")
    out += check_money_and_numbers(p)
    if isinstance(p["ingredients"], str) and p["ingredients"].strip():
        out += check_claims(p, ingredients(p))
    out += check_description(p)
    return out


def check_money_and_numbers(p: dict[str, Any]) -> list[str]:
    out: list[str] = []
    price = p["price"]
    if not isinstance(price, str) or not PRICE.match(price):
        out.append(f"price {price!r} is not a string with two decimals")
    else:
        try:
            value = Decimal(price)
        except InvalidOperation:
            value = Decimal(0)
        if not PRICE_FLOOR <= value <= PRICE_CEILING:
            out.append(f"price {price} outside {PRICE_FLOOR}..{PRICE_CEILING}")
    if p["currency"] != "USD":
        out.append("currency is not USD")
    if not isinstance(p["size"], str) or not SIZE.match(p["size"]):
        out.append(f"size {p['size']!r} is not like '50 ml', '50 g' or '36 patches'")
    for field in ("url", "image_url"):
        if p[field] is not None and not str(p[field]).startswith("https://"):
            out.append(f"{field} is not an https URL or null")
    rating = p["rating"]
    if rating is not None and (
        isinstance(rating, bool) or not isinstance(rating, int | float) or not 1 <= rating <= 5
    ):
        out.append("rating is not null or 1.0..5.0")
    for field in ("review_count", "stock"):
        if isinstance(p[field], bool) or not isinstance(p[field], int) or p[field] < 0:
            out.append(f"{field} is not an integer >= 0")
    if rating is None and p["review_count"]:
        out.append("review_count without a rating")
    return out


def check_claims(p: dict[str, Any], items: list[str]) -> list[str]:
    out: list[str] = []
    tags, concerns, name = set(p["tags"]), set(p["concerns"]), p["name"]
    fragrance = fragrance_markers(items)
    if "fragrance_free" in tags and fragrance:
        out.append(f"tagged fragrance_free but lists {fragrance}")
    if fragrance and "sensitive" in p["skin_types"]:
        out.append(f"suggested for sensitive skin but lists {fragrance}")
    if fragrance and concerns & {"redness", "sensitivity"}:
        out.append(f"targets redness/sensitivity but lists {fragrance}")
    for concern in sorted(concerns):
        if concern in CONCERN_ACTIVES and not matching(items, CONCERN_ACTIVES[concern]):
            out.append(f"concern {concern!r} has no supporting active in the INCI list")
    filters = [i for i in items if any(f in i for f in UV_FILTERS)]
    has_spf = re.search(r"\bSPF \d+", name) is not None
    if p["category"] == "sunscreen" and not (has_spf and filters and "sun_protection" in concerns):
        out.append("sunscreen needs 'SPF n' in its name, a UV filter and the sun_protection concern")
    if ("sun_protection" in concerns or has_spf) and not (
        has_spf and filters and "sun_protection" in concerns
    ):
        out.append("an SPF claim needs 'SPF n' in the name, a UV filter and the sun_protection concern")
    if p["category"] == "exfoliant" and not matching(items, EXFOLIATING_ACIDS):
        out.append("exfoliant without an AHA, BHA or PHA")
    if p["category"] == "spot_treatment" and not concerns & {"acne", "blackheads", "dark_spots"}:
        out.append("spot treatment without an acne, blackhead or dark-spot concern")
    if p["category"] == "eye_care" and "eye" not in (name + " " + p["description"]).lower():
        out.append("eye care product that never mentions the eye")
    if "vegan" in tags and (animal := matching(items, ANIMAL_DERIVED)):
        out.append(f"tagged vegan but lists {animal}")
    if "alcohol_free" in tags and (alcohol := matching(items, DRYING_ALCOHOLS)):
        out.append(f"tagged alcohol_free but lists {alcohol}")
    if "non_comedogenic" in tags and (heavy := matching(items, COMEDOGENIC)):
        out.append(f"tagged non_comedogenic but lists {heavy}")
    if "reef_safe" in tags:
        if p["category"] != "sunscreen":
            out.append("reef_safe on a product that is not a sunscreen")
        if bad := [i for i in items if any(f in i for f in NOT_REEF_SAFE)]:
            out.append(f"tagged reef_safe but lists {bad}")
    return out


def check_description(p: dict[str, Any]) -> list[str]:
    text = p["description"] if isinstance(p["description"], str) else ""
    out: list[str] = []
    sentences = len(SENTENCE_END.findall(text.strip()))
    if not 2 <= sentences <= 4:
        out.append(f"description has {sentences} sentences, not 2-4")
    if claim := DISEASE_CLAIMS.search(text):
        out.append(f"description makes a medical claim ({claim.group(0)!r})")
    return out


def check_catalog(data: Any) -> list[Problem]:
    """Every problem in the file as (handle or 'catalog', rule)."""
    if not isinstance(data, dict) or not isinstance(data.get("products"), list):
        return [("catalog", 'expected {"format": ..., "notice": ..., "products": [...]}')]
    problems: list[Problem] = []
    if data.get("format") != FORMAT:
        problems.append(("catalog", f"format is {data.get('format')!r}, not {FORMAT!r}"))
    if "indicative" not in str(data.get("notice", "")):
        problems.append(("catalog", "the notice must say that prices are indicative"))
    products: list[dict[str, Any]] = data["products"]
    for p in products:
        problems += [(str(p.get("handle", "?")), rule) for rule in check_product(p)]
    if problems:
        return problems
    problems += catalog_rules(products)
    return problems


def catalog_rules(products: list[dict[str, Any]]) -> list[Problem]:
    problems: list[Problem] = []

    def need(ok: bool, rule: str) -> None:
        if not ok:
            problems.append(("catalog", rule))

    for handle, n in Counter(p["handle"] for p in products).items():
        if n > 1:
            problems.append((handle, f"handle used {n} times"))
    for key, n in Counter((p["brand"], p["name"], p["size"]) for p in products).items():
        if n > 1:
            problems.append(("catalog", f"{key} listed {n} times"))
    per_category = Counter(p["category"] for p in products)
    need(len(products) >= MIN_PRODUCTS, f"{len(products)} products, fewer than {MIN_PRODUCTS}")
    for category in CATEGORIES:
        need(per_category[category] >= MIN_PER_CATEGORY, f"{per_category[category]} {category} products")
    brands = {p["brand"] for p in products}
    need(len(brands) >= MIN_BRANDS, f"{len(brands)} brands, fewer than {MIN_BRANDS}")
    prices = [Decimal(p["price"]) for p in products]
    need(min(prices) <= Decimal("7.00") and max(prices) >= Decimal("100.00"), "prices do not span $6-$120")
    sold_out = sum(p["stock"] == 0 for p in products)
    need(0.02 <= sold_out / len(products) <= 0.10, f"{sold_out} sold-out products, not about 5%")

    def count(test: Callable[[dict[str, Any], list[str]], bool]) -> int:
        return sum(test(p, ingredients(p)) for p in products)

    dry_cheap = [
        p
        for p in products
        if p["category"] == "moisturiser" and "dry" in p["skin_types"] and Decimal(p["price"]) < 25
    ]
    need(len(dry_cheap) >= 15, f"only {len(dry_cheap)} moisturisers for dry skin under $25")
    ff = sum("fragrance_free" in p["tags"] and not fragrance_markers(ingredients(p)) for p in dry_cheap)
    need(ff >= 6, f"only {ff} of them fragrance-free")
    # Filters need something to exclude, and the pregnancy-minded need alternatives.
    need(count(lambda p, i: bool(fragrance_markers(i))) >= 10, "too few products with fragrance")
    need(count(lambda p, i: bool(matching(i, DRYING_ALCOHOLS))) >= 5, "too few products with drying alcohol")
    need(count(lambda p, i: bool(matching(i, _RETINOIDS))) >= 10, "too few products with a retinoid")
    need(count(lambda p, i: bool(matching(i, [r"azelaic acid"]))) >= 2, "too few with azelaic acid")
    need(count(lambda p, i: bool(matching(i, [r"bakuchiol"]))) >= 2, "too few with bakuchiol")
    need(
        count(lambda p, i: bool(matching(i, ANIMAL_DERIVED))) >= 5, "too few with animal-derived ingredients"
    )
    return problems


def main(argv: list[str]) -> int:
    path = Path(argv[1]) if len(argv) > 1 else DEFAULT_PATH
    data = json.loads(path.read_text("utf-8"))
    problems = check_catalog(data)
    for where, rule in problems:
        print(f"FAIL {where}: {rule}")
    if problems:
        print(f"{len(problems)} problem(s) in {path}")
        return 1
    products = data["products"]
    per_category = Counter(p["category"] for p in products)
    for category in CATEGORIES:
        print(f"{category:15} {per_category[category]:4}")
    print(f"{'total':15} {len(products):4}  ({len({p['brand'] for p in products})} brands)")
    print(f"OK {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
