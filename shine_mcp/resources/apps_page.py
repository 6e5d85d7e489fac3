"""The HTML of Shine's MCP Apps cards: one self-contained page (no network, no external scripts) that
speaks the MCP Apps postMessage protocol and draws the card its `data-card` attribute names from the
tool result the host sends. Python only fills in the card kind and the title; everything else is static."""

from __future__ import annotations

from html import escape

_STYLE = """
:root { color-scheme: light; --ink: #1d1d1f; --muted: #4a4a50; --line: #d6d6dc; --accent: #7a2e57;
  --accent-ink: #ffffff; --soft: #f6f3f5; --ok: #1f5f36; --warn: #7a4300; }
:root[data-theme="dark"] { color-scheme: dark; --ink: #f2f2f5; --muted: #c4c4cc; --line: #4a4a52;
  --accent: #f0b6d3; --accent-ink: #2a0f1d; --soft: #26242a; --ok: #9be3b2; --warn: #ffcf8a; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--ink);
  background: transparent; }
main { padding: 12px; }
h1 { font-size: 17px; margin: 0 0 10px; }
h2 { font-size: 16px; margin: 2px 0 4px; }
h3 { font-size: 14px; margin: 12px 0 6px; text-transform: uppercase; letter-spacing: .04em; }
ul, ol { margin: 0; padding-left: 20px; }
.grid { display: grid; gap: 12px; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); }
.card { border: 1px solid var(--line); border-radius: 12px; padding: 12px; background: var(--soft); }
.card img { width: 100%; height: auto; aspect-ratio: 1; object-fit: contain; border-radius: 8px;
  background: #ffffff; }
.brand, .muted { color: var(--muted); font-size: 13px; margin: 0; }
.price { font-weight: 700; font-size: 16px; margin: 4px 0; }
.reasons li { margin: 4px 0; font-size: 13px; }
.evidence { font-size: 12px; color: var(--muted); }
.caution { color: var(--warn); font-size: 13px; }
button { font: inherit; font-weight: 600; border: 0; border-radius: 8px; padding: 8px 14px; margin-top: 8px;
  background: var(--accent); color: var(--accent-ink); cursor: pointer; min-height: 36px; }
button[disabled] { opacity: .6; cursor: default; }
a, .link { color: var(--accent); background: none; padding: 0; margin: 0; font-weight: 400;
  min-height: 0; text-decoration: underline; }
:root[data-theme="dark"] a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 4px; border-bottom: 1px solid var(--line); vertical-align: top; }
td.n, th.n { text-align: right; white-space: nowrap; }
.total { font-weight: 700; font-size: 16px; margin-top: 10px; }
.status { min-height: 1.4em; font-size: 13px; color: var(--ok); margin: 6px 0 0; }
.meter { font-variant-numeric: tabular-nums; }
.notice { font-size: 12px; color: var(--muted); margin-top: 12px; }
"""

_SCRIPT = r"""
(() => {
  const kind = document.documentElement.dataset.card;
  const main = document.getElementById("card");
  const pending = new Map();
  let nextId = 1;

  // --- the MCP Apps protocol: JSON-RPC 2.0 over postMessage with the host window ---------------------
  const post = (message) => window.parent.postMessage({ jsonrpc: "2.0", ...message }, "*");
  const request = (method, params) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    post({ id, method, params });
  });
  const notify = (method, params) => post({ method, params });
  const resize = () => notify("ui/notifications/size-changed", {
    width: document.documentElement.scrollWidth, height: document.documentElement.scrollHeight });
  const theme = (context) => {
    if (context && context.theme) document.documentElement.dataset.theme = context.theme;
  };

  window.addEventListener("message", (event) => {
    if (event.source !== window.parent) return;
    const m = event.data;
    if (!m || m.jsonrpc !== "2.0") return;
    if (m.id !== undefined && !m.method) {
      const waiting = pending.get(m.id);
      if (!waiting) return;
      pending.delete(m.id);
      if (m.error) waiting.reject(new Error(m.error.message || "the host refused")); else waiting.resolve(m.result);
      return;
    }
    if (m.method === "ui/notifications/tool-result") { draw(m.params || {}); return; }
    if (m.method === "ui/notifications/host-context-changed") { theme(m.params); return; }
    if (m.method === "ui/resource-teardown" && m.id !== undefined) { post({ id: m.id, result: {} }); return; }
    if (m.method === "ping" && m.id !== undefined) post({ id: m.id, result: {} });
  });

  request("ui/initialize", {
    protocolVersion: "2026-01-26",
    appInfo: { name: "shine-cards", version: "1" },
    appCapabilities: {},
  }).then((result) => {
    theme(result && result.hostContext);
    notify("ui/notifications/initialized", {});
  }, () => {});

  const callTool = async (name, args) => {
    const result = await request("tools/call", { name, arguments: args });
    if (result && result.isError) {
      const text = (result.content || []).map((c) => c.text || "").join(" ").trim();
      throw new Error(text || "that did not work");
    }
    return result || {};
  };
  const openLink = (url) => request("ui/open-link", { url });

  // --- drawing: DOM nodes only (never innerHTML), so catalog text cannot inject markup ----------------
  const el = (tag, attrs, ...children) => {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v === true ? "" : String(v));
    }
    for (const c of children.flat()) if (c !== null && c !== undefined && c !== "") node.append(c);
    return node;
  };
  const money = (m) => (m && typeof m === "object" ? m.display || "" : "");
  const link = (text, url) => el("button", { type: "button", class: "link", onclick: () => openLink(url) }, text);
  const status = () => el("p", { class: "status", role: "status", "aria-live": "polite" });

  const productCard = (item) => {
    const p = item.product && typeof item.product === "object" ? item.product : item;
    const image = (p.image && p.image.url) || p.image_url;
    const out = status();
    const reasons = (item.reasons || []).filter((r) => r && r.text);
    const matched = reasons.length ? [] : (p.matched || []).filter((w) => typeof w === "string");
    const buy = p.in_stock === false
      ? el("p", { class: "caution" }, "Out of stock")
      : el("button", { type: "button", onclick: async (e) => {
          e.target.disabled = true;
          out.textContent = "Adding…";
          try {
            const r = await callTool("add_to_cart", { product_id: p.id });
            const count = r.structuredContent && r.structuredContent.item_count;
            out.textContent = count ? `Added. Your cart has ${count} item${count === 1 ? "" : "s"}.` : "Added to your cart.";
          } catch (err) { out.textContent = err.message; }
          e.target.disabled = false;
        } }, "Add to cart");
    return el("article", { class: "card", "aria-label": `${p.brand || ""} ${p.name}`.trim() },
      image ? el("img", { src: image, alt: `${p.brand || ""} ${p.name}`.trim(), width: 240, height: 240,
        loading: "lazy" }) : null,
      el("p", { class: "brand" }, p.brand || ""),
      el("h2", {}, p.name || ""),
      el("p", { class: "price" }, money(p.price), p.size ? el("span", { class: "muted" }, ` · ${p.size}`) : null),
      p.rating ? el("p", { class: "muted" }, `Rated ${p.rating}/5` +
        (p.review_count ? ` by ${Number(p.review_count).toLocaleString("en")} reviewers` : "")) : null,
      reasons.length || matched.length ? el("ul", { class: "reasons", "aria-label": "Why this product" },
        reasons.map((r) => el("li", {}, r.text,
          r.source ? el("div", { class: "evidence" }, "Evidence: ",
            /^https:\/\//.test(r.source_url || "") ? link(r.source, r.source_url) : r.source) : null)),
        matched.map((w) => el("li", {}, w))) : null,
      (item.cautions || []).map((c) => el("p", { class: "caution" }, c)),
      buy,
      p.where_to_buy && p.where_to_buy.url ? el("p", {}, link(p.where_to_buy.label || "Where to buy",
        p.where_to_buy.url)) : null,
      out);
  };

  const products = (data) => {
    const list = ["products", "recommendations", "results", "matches"].map((k) => data[k]).find(Array.isArray);
    const items = list || (data.id ? [data] : []);
    return [el("h1", {}, items.length === 1 && !list ? "Product" : `${items.length} products`),
      el("div", { class: "grid" }, items.map(productCard))];
  };

  const routine = (data) => {
    const slot = (title, steps) => [el("h3", {}, title), el("ol", {}, (steps || []).map((s) => {
      const p = s.product || {};
      return el("li", {}, el("strong", {}, s.step || p.category || ""), ": ",
        `${p.brand || ""} ${p.name || ""}`.trim(), " ", el("span", { class: "muted" },
          [money(p.price), s.when && s.when !== "daily" ? s.when : ""].filter(Boolean).join(" · ")));
    }))];
    const notes = (data.schedule_notes || []).map((n) => (typeof n === "string" ? n : n.text)).filter(Boolean);
    return [el("h1", {}, "Your routine"), slot("Morning", data.am), slot("Evening", data.pm),
      notes.length ? [el("h3", {}, "Schedule"), el("ul", {}, notes.map((n) => el("li", {}, n)))] : null,
      (data.warnings || []).length ? [el("h3", {}, "Good to know"),
        el("ul", {}, data.warnings.map((w) => el("li", {}, String(w))))] : null,
      el("p", { class: "total" }, `Total: ${money(data.total)}`,
        data.budget ? el("span", { class: "muted" }, ` (budget ${money(data.budget)})`) : null),
      data.notice ? el("p", { class: "notice" }, data.notice) : null];
  };

  const cart = (data) => {
    const lines = data.lines || data.items || [];
    const out = status();
    const checkout = el("button", { type: "button", disabled: lines.length ? null : true, onclick: async (e) => {
      e.target.disabled = true;
      out.textContent = "Preparing a secure checkout…";
      try {
        const r = await callTool("checkout", {});
        const url = r.structuredContent && r.structuredContent.checkout_url;
        if (!url) throw new Error("No payment page came back; ask in the chat.");
        await openLink(url);
        out.textContent = "The payment page is open in your browser.";
      } catch (err) { out.textContent = err.message; e.target.disabled = false; }
    } }, "Checkout");
    return [el("h1", {}, "Your cart"),
      lines.length ? el("table", {},
        el("caption", { class: "muted" }, `${data.item_count || lines.length} item(s)`),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Product"), el("th", { scope: "col", class: "n" }, "Qty"),
          el("th", { scope: "col", class: "n" }, "Price"), el("th", { scope: "col", class: "n" }, "Total"))),
        el("tbody", {}, lines.map((l) => el("tr", {},
          el("td", {}, el("span", { class: "brand" }, l.brand || ""), " ", l.name || ""),
          el("td", { class: "n" }, String(l.quantity)), el("td", { class: "n" }, money(l.unit_price)),
          el("td", { class: "n" }, money(l.line_total))))))
        : el("p", {}, "Your cart is empty."),
      (data.notices || []).map((n) => el("p", { class: "caution" }, String(n))),
      el("p", { class: "total" }, `Subtotal: ${money(data.subtotal || data.total)}`),
      checkout, out];
  };

  const HIDDEN = new Set(["lab_l", "lab_a", "lab_b", "hue_angle"]);  // CIELAB says little to a shopper
  // The names the web widget gives the measurements (agent/cards.py METRIC_LABELS).
  const LABELS = { ita: "Skin tone (ITA)", tone_unevenness: "Uneven tone" };
  const label = (name) => LABELS[name] || String(name).replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());
  const range = (m) => {
    const d = m.details || {};
    const low = Object.keys(d).find((k) => k.endsWith("_low"));
    const high = low && low.replace(/_low$/, "_high");
    return low && d[high] !== undefined ? `${d[low]} to ${d[high]}` : null;
  };
  const report = (data) => {
    const metrics = (data.metrics || []).filter((m) => m && !HIDDEN.has(m.name));
    const skin = data.skin_type && typeof data.skin_type === "object" ? data.skin_type.value : data.skin_type;
    const withheld = (data.withheld || []).filter((w) => w && w.name);
    const gates = (data.gates || []).filter((g) => g && g.passed === false);
    return [el("h1", {}, "Your skin report"),
      skin ? el("p", {}, "Skin type: ", el("strong", {}, String(skin))) : null,
      el("table", {}, el("caption", { class: "muted" }, "Measured from your photo"),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Measure"), el("th", { scope: "col", class: "n" }, "Value"),
          el("th", { scope: "col", class: "n" }, "Likely range"), el("th", { scope: "col", class: "n" }, "Confidence"))),
        el("tbody", {}, metrics.map((m) => el("tr", {},
          el("td", {}, label(m.name), m.explanation ? el("div", { class: "evidence" }, m.explanation) : null),
          el("td", { class: "n meter" }, m.value === null || m.value === undefined ? "not measured"
            : `${m.value} ${m.unit || ""}`.trim()),
          el("td", { class: "n meter" }, range(m) || "–"),
          el("td", { class: "n meter" }, typeof m.confidence === "number" ? `${Math.round(m.confidence * 100)} %` : "–"))))),
      gates.length ? [el("h3", {}, "Photo checks that did not pass"), el("ul", {}, gates.map((g) => el("li", {},
        `${label(g.name)}: ${g.advice || `needs ${g.comparison} ${g.threshold} ${g.unit || ""}`.trim()}`,
        (g.blocks || []).length ? el("div", { class: "evidence" }, `Held back: ${g.blocks.map(label).join(", ")}`)
          : null)))] : null,
      withheld.length ? [el("h3", {}, "What Shine did not judge, and why"), el("ul", {}, withheld.map((w) =>
        el("li", {}, el("strong", {}, label(w.name)), `: ${w.reason || ""}`)))] : null,
      data.notice ? el("p", { class: "notice" }, data.notice) : null];
  };

  const DRAW = { products, routine, cart, "skin-report": report };
  function draw(result) {
    const data = result.structuredContent;
    main.replaceChildren();
    if (result.isError || !data) {
      const text = (result.content || []).map((c) => c.text || "").join(" ").trim();
      main.append(el("p", { role: "alert" }, text || "Nothing to show."));
    } else {
      main.append(...[DRAW[kind](data)].flat(3).filter(Boolean));
    }
    resize();
  }
})();
"""


def card_page(kind: str, title: str) -> str:
    """The HTML document for one card kind (`products`, `routine`, `cart`, `skin-report`)."""
    return (
        f'<!doctype html>\n<html lang="en" data-card="{escape(kind)}">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
        f"<style>{_STYLE}</style>\n</head>\n<body>\n"
        f'<main id="card" aria-live="polite"><p>Loading…</p></main>\n'
        f"<script>{_SCRIPT}</script>\n</body>\n</html>\n"
    )
