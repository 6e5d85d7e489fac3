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


def test_capacity_is_what_the_cores_left_by_database_and_generator_carry() -> None:
    """Two workers: 1 500 requests in 10 s; the database and the generator took 3.75 s (2.5 ms a request).
    At 10 ms of server CPU a request, two cores carry 2 / 12.5 ms = 160 requests/s."""
    two = run(2, 150, 1350)
    two.database_cpu, two.generator_cpu = 3.0, 0.75
    assert two.capacity_at(10.0, cores=2) == pytest.approx(160.0)
    # With nothing else to run, each worker still gets one core at most: 2 / 10 ms.
    two.database_cpu = two.generator_cpu = 0.0
    assert two.capacity_at(10.0, cores=4) == pytest.approx(200.0)


def test_the_pair_line_shows_the_bound_and_what_a_request_cost_more(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """One worker: 100 shoppers' requests a second plus 20 paced webhooks, 10 s of CPU for 1 200 requests.
    Two workers at one worker's 8.33 ms a request, after the database's and generator's 2.5 ms, could carry
    2 / 10.83 ms = 184.6 requests/s, 164.6 of them shoppers': 1.65× of 100."""
    one, two = run(1, 100, 900, webhooks=200), run(2, 150, 1350, webhooks=200)
    two.database_cpu, two.generator_cpu, two.server_cpu = 3.4, 0.85, 20.4  # 2.5 and 12 ms a request
    print_scaling(2, [(one, two)])
    shown = capsys.readouterr().out
    assert "at most 1.65× for shoppers" in shown
    assert "a request cost 2 workers +44% server CPU" in shown
