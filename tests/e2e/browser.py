"""Debian's Chromium driven by Playwright: how the end-to-end tests launch it, where screenshots go, and
what they check the way a person would meet a page: text contrast a reader can see, and axe-core's audit."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright import sync_api

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
playwright_api = sync_api  # installed by `make test`, like the browser
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"  # pinned in package.json, installed by `make test`
MIN_CONTRAST = 4.5  # WCAG 1.4.3 (AA) for normal-size text
SIZES: dict[str, dict[str, Any]] = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {"viewport": {"width": 360, "height": 740}, "has_touch": True, "is_mobile": True},
}


def shot(page: object, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=False)  # type: ignore[attr-defined]


# Given one element, its contrast; given null, every rendered, enabled button and link with text, in the
# page and in open shadow roots (the widget). The text colour is laid over the element's effective
# background: its own and its ancestors' background colours (across shadow roots) composited up to the
# first opaque one, over white.
_CONTRAST_JS = """(only) => {
  const parse = (s) => {
    const m = /rgba?\\(([^)]+)\\)/.exec(s || "");
    if (!m) return [0, 0, 0, 0];
    const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const up = (n) => n.parentElement || (n.getRootNode() instanceof ShadowRoot ? n.getRootNode().host : null);
  const over = (top, bottom) => {
    const a = top[3] + bottom[3] * (1 - top[3]);
    if (!a) return [0, 0, 0, 0];
    return [0, 1, 2].map((i) => (top[i] * top[3] + bottom[i] * bottom[3] * (1 - top[3])) / a).concat([a]);
  };
  const background = (el) => {
    const layers = [];
    for (let n = el; n; n = up(n)) {
      const c = parse(getComputedStyle(n).backgroundColor);
      if (c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let colour = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) colour = over(layers[i], colour);
    return colour;
  };
  const luminance = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const hex = (c) => "#" + c.slice(0, 3).map((v) => Math.round(v).toString(16).padStart(2, "0")).join("");
  const measure = (el) => {
    const bg = background(el);
    const fg = over(parse(getComputedStyle(el).color), bg);
    const [hi, lo] = [luminance(fg), luminance(bg)].sort((x, y) => y - x);
    const text = (el.innerText || "").trim().replace(/\\s+/g, " ");
    return { text: text, ratio: Math.round(((hi + 0.05) / (lo + 0.05)) * 100) / 100, color: hex(fg), background: hex(bg) };
  };
  if (only) return measure(only);
  const found = [];
  const walk = (root) => root.querySelectorAll("*").forEach((n) => {
    if (n.matches("a[href], button, [role=button], [role=link]")) found.push(n);
    if (n.shadowRoot) walk(n.shadowRoot);
  });
  walk(document);
  return found
    .filter((n) => n.checkVisibility({ visibilityProperty: true, opacityProperty: true }) && !n.disabled)
    .map(measure)
    .filter((m) => m.text);
}"""


def contrast(locator: object) -> float:
    """The contrast ratio of one element's text against its own effective background."""
    return float(locator.evaluate(_CONTRAST_JS)["ratio"])  # type: ignore[attr-defined]


def unreadable_controls(page: object, minimum: float = MIN_CONTRAST) -> list[str]:
    """Every visible button and link whose text is fainter than `minimum` against its background."""
    measured: list[dict[str, Any]] = page.evaluate(_CONTRAST_JS, None)  # type: ignore[attr-defined]
    return [
        f"{m['text']!r}: {m['ratio']}:1 ({m['color']} on {m['background']})"
        for m in measured
        if m["ratio"] < minimum
    ]


# label-content-name-mismatch is "experimental" in axe-core 4.x, so off unless asked for.
_AXE_JS = """async () => {
  const result = await axe.run(document, {
    resultTypes: ["violations"],
    rules: { "label-content-name-mismatch": { enabled: true } },
  });
  return result.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 4).map((n) => n.target.join(" > ")),
  }));
}"""


def new_context(browser: object, size: str, **options: Any) -> Any:
    """A browser context at one of `SIZES` whose pages all carry axe-core. It comes in as an init script:
    `add_script_tag` writes an inline <script>, which the pages' own Content-Security-Policy (rightly)
    refuses, and the audit should see the pages as shipped, CSP included."""
    context = browser.new_context(**SIZES[size], **options)  # type: ignore[attr-defined]
    context.add_init_script(path=str(AXE))
    return context


def axe_violations(page: object) -> list[str]:
    """axe-core's audit of the page as it is now (open shadow roots included), one line per rule broken."""
    if not page.evaluate("() => typeof window.axe === 'object'"):  # type: ignore[attr-defined]
        raise AssertionError("axe-core is not in this page: open it in a context from new_context()")
    found: list[dict[str, Any]] = page.evaluate(_AXE_JS)  # type: ignore[attr-defined]
    return [f"{v['id']} ({v['impact']}): {v['help']} at {v['nodes']}" for v in found]


def serious(violations: list[str]) -> list[str]:
    return [v for v in violations if "(serious)" in v or "(critical)" in v]
