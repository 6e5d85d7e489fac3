"""How `benchmarks/bench_load.py` judges scaling when it ran several pairs (`--workers 1,2,1,2`): pair by
pair, on the median, not on whichever pair ran last; and on the shoppers' requests, since the mixed phase's
webhooks arrive at a fixed rate whatever the server can do."""

from __future__ import annotations

import pytest

from benchmarks.bench_load import MixedReport, print_scaling


def run(workers: int, chats: int, calls: int, webhooks: int = 0) -> MixedReport:
    report = MixedReport(f"PostgreSQL, {workers} workers", seconds=10.0, workers=workers)
    report.load.timings = {
        "chat reply (whole stream)": [0.2] * chats,
        "mcp search_products": [0.05] * calls,
        "webhook": [0.01] * webhooks,
    }
    report.server_cpu = 10.0
    return report


def test_scaling_is_judged_on_the_median_of_the_pairs(capsys: pytest.CaptureFixture[str]) -> None:
    pairs = [
        (run(1, 100, 900), run(2, 150, 1350)),  # 1.50×
        (run(1, 100, 900), run(2, 180, 1620)),  # 1.80×
        (run(1, 100, 900), run(2, 120, 1080)),  # 1.20×: the last pair, which alone was judged before
    ]
    print_scaling(2, pairs)
    shown = capsys.readouterr().out
    assert "(chat + MCP): 1.50× (median of 3 pairs: 1.50×, 1.80×, 1.20×)  ·  target ≥ 1.6: MISSED" in shown
    assert "pair 2: shoppers 100.0 → 180.0 requests/s, by kind chat 1.80×  mcp 1.80×" in shown


def test_paced_webhooks_are_shown_but_do_not_pull_the_judged_ratio_towards_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """20 webhooks a second in both runs (200 in 10 s): shoppers 100 → 170 a second is 1.70×; counted in,
    120 → 190 is 1.58×."""
    print_scaling(2, [(run(1, 100, 900, webhooks=200), run(2, 170, 1530, webhooks=200))])
    shown = capsys.readouterr().out
    assert "(chat + MCP): 1.70× (1.70×)  ·  target ≥ 1.6: met" in shown
    assert "with the paced webhooks counted in: 1.58× (1.58×)" in shown
    assert "all 120.0 → 190.0" in shown


def test_a_pair_whose_mix_differs_shows_it_by_kind(capsys: pytest.CaptureFixture[str]) -> None:
    print_scaling(2, [(run(1, 100, 900), run(2, 300, 1300))])
    assert "by kind chat 3.00×  mcp 1.44×" in capsys.readouterr().out
