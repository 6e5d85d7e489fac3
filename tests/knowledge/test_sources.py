"""Every source points at the document it is cited for and records what was checked against it."""

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from shine_mcp.knowledge import KnowledgeBase, load_knowledge, load_knowledge_from
from tests.knowledge.helpers import edit_json

SOURCES_CHECK = Path(__file__).parents[2] / "docs" / "sources-check.md"
EU_ONLY_FILTERS = [
    "Bis-Ethylhexyloxyphenol Methoxyphenyl Triazine",
    "Ethylhexyl Triazone",
    "Diethylamino Hydroxybenzoyl Hexyl Benzoate",
    "Methylene Bis-Benzotriazolyl Tetramethylbutylphenol",
    "Drometrizole Trisiloxane",
    "Diethylhexyl Butamido Triazone",
]


@pytest.fixture(scope="module")
def kb() -> KnowledgeBase:
    return load_knowledge()


def test_every_source_links_the_document_itself_not_a_search_or_home_page(kb: KnowledgeBase) -> None:
    for source in kb.sources.values():
        parts = urlsplit(source.url)
        assert parts.scheme == "https", source.id
        assert parts.path.strip("/"), f"{source.id}: {source.url} is a bare home page"
        pages = {segment.split(".")[0].lower() for segment in parts.path.split("/")}
        assert "search" not in pages, f"{source.id}: {source.url} is a search page"
        assert not {"query", "q", "term", "search"} & set(parse_qs(parts.query)), source.id
        assert "query=" not in source.url, source.id


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        (
            "https://dailymed.nlm.nih.gov/dailymed/search.cfm?labeltype=all&query=tretinoin+cream",
            "search page",
        ),
        ("https://pubmed.ncbi.nlm.nih.gov/?term=niacinamide", "home page"),
        ("https://www.example.org/articles?q=retinol", "search page"),
        ("https://health.ec.europa.eu/", "home page"),
        ("https://www.cir-safety.org", "home page"),
    ],
)
def test_a_search_page_or_a_home_page_is_refused_at_load_naming_the_source(
    data_copy: Path, url: str, problem: str
) -> None:
    def change(sources: list[dict[str, Any]]) -> None:
        sources[0]["url"] = url

    edit_json(data_copy / "sources.json", change)
    with pytest.raises(ValueError, match=rf"(?s)source 'cosing'.*{problem}"):
        load_knowledge_from(data_copy)


def test_a_source_without_a_check_note_is_refused(data_copy: Path) -> None:
    def change(sources: list[dict[str, Any]]) -> None:
        del sources[0]["checked"]

    edit_json(data_copy / "sources.json", change)
    with pytest.raises(ValueError, match="(?s)source 'cosing'.*checked"):
        load_knowledge_from(data_copy)


def test_every_source_records_an_identifier_and_what_it_supports(kb: KnowledgeBase) -> None:
    identifiers = (
        *("PMID", "DOI", "PMC", "CELEX", "ELI", "CFR", " FR ", "setid", "SCCS/", "Guidance for Industry"),
        *("Int J Toxicol", "CosIng", "standards page"),
    )
    for source in kb.sources.values():
        assert any(word in source.checked for word in identifiers), (
            f"{source.id}: the check note names no identifier"
        )
        assert str(source.year) in source.checked, (
            f"{source.id}: the check note does not confirm the year {source.year}"
        )


def test_the_sources_check_table_covers_every_source(kb: KnowledgeBase) -> None:
    table = SOURCES_CHECK.read_text("utf-8")
    missing = [source_id for source_id in kb.sources if f"`{source_id}`" not in table]
    assert missing == []


def test_audited_metadata_is_corrected(kb: KnowledgeBase) -> None:
    silicones = kb.source("cir_silicones_2003")
    assert silicones.year == 2003 and "2019" in silicones.title
    assert kb.source("saric_2017").year == 2017 and "2017;6(1):2" in kb.source("saric_2017").title
    parabens = kb.source("sccs_1514_13").url
    assert "/publications/" in parabens and "parabens" in parabens
    assert "setid=" in kb.source("dailymed_tretinoin").url


def test_eu_only_uv_filters_cite_the_eu_annex_and_banned_4_mbc_cites_the_ban(kb: KnowledgeBase) -> None:
    for name in EU_ONLY_FILTERS:
        ingredient = kb.lookup(name)
        assert ingredient is not None and ingredient.source_id == "eu_1223_2009", name
    mbc = kb.lookup("4-MBC")
    assert mbc is not None and mbc.source_id == "eu_2024_996"
    assert any("Banned" in c.advice and c.source_id == "eu_2024_996" for c in kb.cautions("4-MBC"))


def test_sources_that_did_not_support_their_claims_are_no_longer_cited(kb: KnowledgeBase) -> None:
    assert "herman_2013" not in kb.sources  # no dark-circle data; describes increased microcirculation
    assert "papakonstantinou_2012" not in kb.sources  # the skin's own hyaluronan, no topical data
    redness = [c for c in kb.concern_claims("Azelaic Acid") if c.concern == "redness"]
    assert [c.source_id for c in redness] == ["thiboutot_2003"]
    vitamin_c = [c for c in kb.cautions("Ascorbic Acid") if c.kind == "irritation"]
    assert all("sting" not in c.advice for c in vitamin_c if c.source_id == "pinnell_2001")
