/*! Shine chat widget: embed with
 *    <script src="https://YOUR-SHINE/widget.js" data-shine-url="https://YOUR-SHINE" defer></script>
 * No build step, no dependencies. Everything lives in a shadow root, so the shop's CSS cannot reach in
 * and ours cannot leak out. The page talks to Shine's /api/chat (Server-Sent Events) and /api/uploads.
 */
(function () {
  "use strict";
  if (window.__shineWidget) return;
  window.__shineWidget = true;

  var script = document.currentScript;
  var configured = script && script.getAttribute("data-shine-url");
  var BASE = (configured || (script && script.src ? new URL(script.src, location.href).origin : location.origin)).replace(/\/+$/, "");
  var TOKEN_KEY = "shine-chat-token:" + BASE;
  var SHINE_ORIGIN = new URL(BASE).origin;
  // On a shop's own site Shine's cookie is a third-party cookie browsers drop: there the widget signs in
  // through a popup and keeps a token bound to this page's origin, in memory and in sessionStorage (this
  // tab only; never a cookie, never localStorage).
  var SIGN_IN_KEY = "shine-widget-token:" + BASE;
  var MAX_RESUMES = 5;

  var CSS = [
    ":host{all:initial;position:fixed;z-index:2147483000;right:16px;bottom:16px;font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:#1f2328;}",
    "*,*::before,*::after{box-sizing:border-box;}",
    "button,input,textarea{font:inherit;color:inherit;}",
    ".launcher{all:unset;box-sizing:border-box;cursor:pointer;display:flex;align-items:center;gap:8px;padding:12px 18px;border-radius:999px;background:#7a3e65;color:#fff;font-weight:600;box-shadow:0 6px 20px rgba(0,0,0,.22);}",
    ".launcher:hover{background:#652f53;}",
    ".launcher[hidden]{display:none;}",
    ".launcher:focus-visible,button:focus-visible,a:focus-visible,textarea:focus-visible,input:focus-visible,label.attach:focus-within{outline:3px solid #f0a8d0;outline-offset:2px;}",
    ".launcher svg{width:20px;height:20px;}",
    ".panel{position:fixed;right:16px;bottom:16px;width:400px;max-width:calc(100vw - 32px);height:min(640px,calc(100vh - 32px));display:flex;flex-direction:column;background:#fff;border-radius:16px;box-shadow:0 12px 40px rgba(0,0,0,.28);overflow:hidden;}",
    ".panel[hidden]{display:none;}",
    ".head{display:flex;align-items:center;gap:8px;padding:12px 14px;background:#7a3e65;color:#fff;}",
    ".head h2{all:unset;font-weight:700;font-size:16px;flex:1;}",
    ".icon{all:unset;box-sizing:border-box;cursor:pointer;width:32px;height:32px;display:grid;place-items:center;border-radius:8px;}",
    ".icon:hover{background:rgba(255,255,255,.15);}",
    ".log{flex:1;overflow-y:auto;padding:14px;display:flex;flex-direction:column;gap:10px;background:#faf8f9;}",
    ".log>*{flex-shrink:0;}",
    ".msg{max-width:88%;padding:9px 12px;border-radius:14px;white-space:normal;word-wrap:break-word;overflow-wrap:anywhere;}",
    ".msg p{margin:0 0 6px;} .msg p:last-child{margin:0;} .msg ul,.msg ol{margin:4px 0 6px;padding-left:20px;}",
    ".msg code{font:13px ui-monospace,Menlo,Consolas,monospace;background:#f1e9ee;padding:0 4px;border-radius:4px;}",
    ".user{align-self:flex-end;background:#7a3e65;color:#fff;border-bottom-right-radius:4px;}",
    ".user a{color:#fff;}",
    ".bot{align-self:flex-start;background:#fff;border:1px solid #e6dfe3;border-bottom-left-radius:4px;}",
    ".bot a{color:#7a3e65;}",
    ".card-wide a:not(.btn){color:#7a3e65;font-weight:600;}",
    ".thumb{display:block;max-width:140px;max-height:140px;border-radius:10px;margin-bottom:6px;}",
    ".notice{align-self:stretch;font-size:13px;padding:8px 10px;border-radius:10px;background:#fff6db;border:1px solid #ecd58e;}",
    ".notice.medical_referral{background:#fdeaea;border-color:#e7a3a3;}",
    ".error{align-self:stretch;font-size:13px;padding:8px 10px;border-radius:10px;background:#fdeaea;border:1px solid #e7a3a3;color:#7d1f1f;}",
    ".cards{align-self:stretch;margin:0;list-style:none;display:flex;gap:10px;overflow-x:auto;padding:2px 2px 6px;scroll-snap-type:x mandatory;}",
    ".card{flex:0 0 200px;scroll-snap-align:start;background:#fff;border:1px solid #e6dfe3;border-radius:12px;padding:10px;display:flex;flex-direction:column;gap:4px;}",
    ".card img,.card .ph{width:100%;height:110px;object-fit:contain;border-radius:8px;background:#f1e9ee;display:grid;place-items:center;color:#b08aa3;font-size:28px;}",
    ".card .brand{font-size:11px;text-transform:uppercase;letter-spacing:.06em;color:#7d6f77;}",
    ".card .name{font-weight:600;line-height:1.3;}",
    ".card .price{font-weight:700;}",
    ".card ul{margin:0;padding-left:16px;font-size:12px;color:#4d4449;}",
    ".card .oos{font-size:12px;color:#a33;}",
    ".card .disclosure{font-size:11px;color:#6b5f66;} .card a.buy:not(.btn){color:#7a3e65;font-weight:600;font-size:13px;}",
    ".card .sources{font-size:11px;color:#6b5f66;} .card .sources a{color:#7a3e65;}",
    ".btn{all:unset;box-sizing:border-box;cursor:pointer;text-align:center;padding:8px 12px;border-radius:10px;background:#7a3e65;color:#fff;font-weight:600;}",
    ".btn:hover{background:#652f53;}",
    ".btn[disabled]{opacity:.5;cursor:default;}",
    ".btn[hidden]{display:none;}",
    ".btn.secondary{background:#fff;color:#7a3e65;border:1px solid #7a3e65;}",
    ".card-wide{align-self:stretch;background:#fff;border:1px solid #e6dfe3;border-radius:12px;padding:12px;display:flex;flex-direction:column;gap:6px;}",
    ".card-wide h3{all:unset;font-weight:700;display:block;}",
    ".card-wide p{margin:0;}",
    ".card-wide .row+p.muted{margin-top:-4px;}",
    ".row{display:flex;justify-content:space-between;gap:10px;font-size:14px;}",
    ".actions{display:flex;flex-wrap:wrap;gap:6px;}",
    ".btn.danger{background:#a33;} .btn.danger:hover{background:#862828;}",
    ".card select{font:inherit;font-size:13px;padding:4px;border:1px solid #8a7d85;border-radius:8px;background:#fff;color:#2b2228;}",
    ".line-actions{display:flex;gap:6px;} .line-actions .btn{padding:2px 10px;font-size:13px;}",
    ".muted{color:#6b5f66;font-size:12px;}",
    ".images{display:grid;grid-template-columns:repeat(3,1fr);gap:6px;}",
    ".images a{display:block;} .images img{width:100%;aspect-ratio:1;object-fit:cover;border-radius:8px;}",
    ".status{display:flex;align-items:center;gap:8px;padding:6px 14px;font-size:13px;color:#5b4d55;background:#f4eef1;border-top:1px solid #eadfe5;}",
    ".status[hidden]{display:none;}",
    ".spinner{width:14px;height:14px;border-radius:50%;border:2px solid #d9c4d0;border-top-color:#7a3e65;animation:spin .8s linear infinite;}",
    "@keyframes spin{to{transform:rotate(360deg);}}",
    "@media (prefers-reduced-motion:reduce){.spinner{animation:none;}}",
    "form{display:flex;flex-direction:column;gap:6px;padding:10px;border-top:1px solid #eadfe5;background:#fff;}",
    ".pending{display:flex;align-items:center;gap:8px;font-size:13px;}",
    ".pending[hidden]{display:none;}",
    ".pending img{width:40px;height:40px;object-fit:cover;border-radius:6px;}",
    ".compose{display:flex;gap:6px;align-items:flex-end;}",
    "textarea{flex:1;resize:none;min-height:42px;max-height:120px;padding:10px;border:1px solid #cdbfc7;border-radius:10px;background:#fff;}",
    "label.attach{cursor:pointer;display:grid;place-items:center;width:42px;height:42px;border-radius:10px;border:1px solid #cdbfc7;color:#7a3e65;}",
    "label.attach[hidden]{display:none;}",
    "label.attach input{position:absolute;width:1px;height:1px;opacity:0;overflow:hidden;}",
    ".send{height:42px;}",
    ".keep{font-size:12px;color:#6b5f66;display:flex;align-items:center;gap:6px;}",
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap;}",
    "@media (max-width:480px){:host{right:12px;bottom:12px;} .panel{right:0;bottom:0;width:100vw;max-width:100vw;height:100vh;height:100dvh;border-radius:0;} .card{flex-basis:180px;}}"
  ].join("\n");

  // --- tiny DOM helpers (text always via textContent: nothing from the server becomes markup) ----------
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    if (attrs) {
      Object.keys(attrs).forEach(function (key) {
        var value = attrs[key];
        if (value === null || value === undefined || value === false) return;
        if (key === "text") node.textContent = value;
        else if (key === "class") node.className = value;
        else if (key.slice(0, 2) === "on") node.addEventListener(key.slice(2), value);
        else node.setAttribute(key, value === true ? "" : value);
      });
    }
    (children || []).forEach(function (child) {
      if (child) node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }
  function safeUrl(value) {
    if (typeof value !== "string" || !value.trim()) return null;
    try {
      var url = new URL(value, BASE);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (e) { return null; }
  }
  function link(href, text) {
    var url = safeUrl(href);
    if (!url) return document.createTextNode(text);
    return el("a", { href: url, target: "_blank", rel: "noopener noreferrer", text: text });
  }
  function svg(path) {
    var ns = "http://www.w3.org/2000/svg";
    var s = document.createElementNS(ns, "svg");
    s.setAttribute("viewBox", "0 0 24 24"); s.setAttribute("aria-hidden", "true"); s.setAttribute("focusable", "false");
    s.setAttribute("width", "20"); s.setAttribute("height", "20");
    var p = document.createElementNS(ns, "path");
    p.setAttribute("d", path); p.setAttribute("fill", "currentColor");
    s.appendChild(p);
    return s;
  }
  var ICONS = {
    chat: "M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H8l-4 4V6a2 2 0 0 1 2-2zm3 6v2h10v-2H7zm0-3v2h10V7H7z",
    close: "M18.3 5.7 12 12l6.3 6.3-1.4 1.4L10.6 13.4 4.3 19.7 2.9 18.3 9.2 12 2.9 5.7 4.3 4.3l6.3 6.3 6.3-6.3z",
    camera: "M9 3 7.2 5H4a2 2 0 0 0-2 2v11a2 2 0 0 0 2 2h16a2 2 0 0 0 2-2V7a2 2 0 0 0-2-2h-3.2L15 3H9zm3 5a4.5 4.5 0 1 1 0 9 4.5 4.5 0 0 1 0-9z",
    reset: "M12 5V1L7 6l5 5V7a6 6 0 1 1-6 6H4a8 8 0 1 0 8-8z",
    privacy: "M12 1 3 5v6c0 5.5 3.8 10.7 9 12 5.2-1.3 9-6.5 9-12V5l-9-4zm0 6a3 3 0 1 1 0 6 3 3 0 0 1 0-6zm0 8c2 0 6 1 6 3v.3A9.8 9.8 0 0 1 12 21a9.8 9.8 0 0 1-6-2.7V18c0-2 4-3 6-3z"
  };

  // A small, safe Markdown subset: paragraphs, - and 1. lists, **bold**, [text](https://…) and bare links.
  function inline(text, into) {
    var pattern = /\*\*([^*]+)\*\*|\[([^\]]+)\]\((https?:\/\/[^\s)]+)\)|(https?:\/\/[^\s)<>"]+)|`([^`]+)`/g;
    var last = 0, match;
    while ((match = pattern.exec(text))) {
      if (match.index > last) into.appendChild(document.createTextNode(text.slice(last, match.index)));
      if (match[1]) into.appendChild(el("strong", { text: match[1] }));
      else if (match[5]) into.appendChild(el("code", { text: match[5] }));
      else if (match[2]) into.appendChild(link(match[3], match[2]));
      else into.appendChild(link(match[4].replace(/[.,;:!?]+$/, ""), match[4].replace(/[.,;:!?]+$/, "")));
      var trailing = match[4] ? match[4].match(/[.,;:!?]+$/) : null;
      if (trailing) into.appendChild(document.createTextNode(trailing[0]));
      last = pattern.lastIndex;
    }
    if (last < text.length) into.appendChild(document.createTextNode(text.slice(last)));
  }
  function render(text, into) {
    into.textContent = "";
    var list = null;
    text.split("\n").forEach(function (line) {
      var bullet = line.match(/^\s*[-*•]\s+(.*)$/), numbered = line.match(/^\s*\d+[.)]\s+(.*)$/);
      if (bullet || numbered) {
        var kind = bullet ? "ul" : "ol";
        if (!list || list.tagName.toLowerCase() !== kind) { list = el(kind); into.appendChild(list); }
        var item = el("li"); inline((bullet || numbered)[1], item); list.appendChild(item);
        return;
      }
      list = null;
      if (!line.trim()) return;
      var p = el("p"); inline(line, p); into.appendChild(p);
    });
  }

  // --- state ---------------------------------------------------------------------------------------
  var state = { open: false, busy: false, next: null, token: null, upload: null, capabilities: {}, loaded: false, signedIn: false, account: null, canSignIn: false };
  try { state.token = localStorage.getItem(TOKEN_KEY); } catch (e) { /* storage blocked: cookies only */ }
  function remember(token) {
    if (!token) return;
    state.token = token;
    try { localStorage.setItem(TOKEN_KEY, token); } catch (e) { /* cookies only */ }
  }
  function forget() {
    state.token = null;
    try { localStorage.removeItem(TOKEN_KEY); } catch (e) { /* cookies only */ }
  }
  try { state.widgetToken = sessionStorage.getItem(SIGN_IN_KEY); } catch (e) { /* storage blocked: memory only */ }
  function keepSignIn(token) {
    state.widgetToken = token;
    try { sessionStorage.setItem(SIGN_IN_KEY, token); } catch (e) { /* memory only */ }
  }
  function dropSignIn() {
    state.widgetToken = null;
    try { sessionStorage.removeItem(SIGN_IN_KEY); } catch (e) { /* memory only */ }
  }
  function headers(extra) {
    var h = extra || {};
    if (state.token) h["X-Shine-Chat"] = state.token;
    if (state.widgetToken) h.Authorization = "Bearer " + state.widgetToken;
    return h;
  }

  // --- the DOM ---------------------------------------------------------------------------------------
  var host = el("div", { id: "shine-advisor" });
  var root = host.attachShadow({ mode: "open" });
  try {
    var sheet = new CSSStyleSheet(); sheet.replaceSync(CSS); root.adoptedStyleSheets = [sheet];
  } catch (e) { root.appendChild(el("style", { text: CSS })); }

  var launcher = el("button", { class: "launcher", type: "button", "aria-haspopup": "dialog", "aria-expanded": "false", "aria-controls": "shine-panel" }, [svg(ICONS.chat), el("span", { text: "Skin advisor" })]);
  var resetButton = el("button", { class: "icon", type: "button", "aria-label": "Start a new chat", title: "New chat" }, [svg(ICONS.reset)]);
  var dataButton = el("button", { class: "icon", type: "button", "aria-label": "Your data", title: "Your data" }, [svg(ICONS.privacy)]);
  var closeButton = el("button", { class: "icon", type: "button", "aria-label": "Close the chat", title: "Close" }, [svg(ICONS.close)]);
  var log = el("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", "aria-label": "Conversation", tabindex: "0" });
  var statusText = el("span", { text: "" });
  var status = el("div", { class: "status", role: "status", hidden: true }, [el("span", { class: "spinner", "aria-hidden": "true" }), statusText]);
  var input = el("textarea", { id: "shine-input", rows: "1", placeholder: "Type a message…", "aria-label": "Message", maxlength: "4000" });
  var file = el("input", { type: "file", accept: "image/jpeg,image/png,image/webp", capture: "user", "aria-label": "Attach a photo of your face" });
  var attach = el("label", { class: "attach", title: "Attach a selfie", hidden: true }, [svg(ICONS.camera), file]);
  var keep = el("input", { type: "checkbox", id: "shine-keep" });
  var keepRow = el("label", { class: "keep", hidden: true }, [keep, "Keep my photo to compare later"]);
  var pendingImg = el("img", { alt: "" });
  var pendingText = el("span", { text: "" });
  var pendingRemove = el("button", { class: "btn secondary", type: "button", text: "Remove" });
  var pending = el("div", { class: "pending", hidden: true }, [pendingImg, pendingText, pendingRemove]);
  var send = el("button", { class: "btn send", type: "submit", text: "Send" });
  var form = el("form", { "aria-label": "Send a message" }, [pending, el("div", { class: "compose" }, [attach, input, send]), keepRow]);
  var panel = el("div", { class: "panel", id: "shine-panel", role: "dialog", "aria-modal": "false", "aria-label": "Shine skincare advisor", hidden: true }, [
    el("div", { class: "head" }, [el("h2", { text: "Skin advisor" }), dataButton, resetButton, closeButton]),
    log, status, form
  ]);
  root.appendChild(launcher);
  root.appendChild(panel);

  function scroll() { log.scrollTop = log.scrollHeight; }
  // A finished reply taller than the log is shown from the shopper's question down, so the cards that
  // open it stay in view and the words follow below, instead of the bottom of the text.
  function reveal(question) {
    var top = question.getBoundingClientRect().top - log.getBoundingClientRect().top + log.scrollTop - 8;
    if (log.scrollHeight - top > log.clientHeight) log.scrollTop = Math.max(0, top);
  }
  function add(node) { log.appendChild(node); scroll(); return node; }
  function bubble(role, text) {
    var node = el("div", { class: "msg " + (role === "user" ? "user" : "bot") });
    if (role === "user") node.appendChild(el("span", { class: "sr", text: "You: " }));
    var body = el("div");
    node.appendChild(body);
    if (text) render(text, body);
    add(node);
    return { node: node, body: body, text: text || "" };
  }
  function notice(code, message) {
    return add(el("div", { class: "notice " + code, role: "note", text: message }));
  }
  function failure(message) {
    return add(el("div", { class: "error", role: "alert", text: message }));
  }
  function setBusy(busy, label) {
    state.busy = busy;
    send.disabled = busy;
    status.hidden = !busy;
    statusText.textContent = label || "Thinking…";
  }

  // --- cards ---------------------------------------------------------------------------------------
  function price(money) { return money && money.display ? money.display : ""; }
  // "$10.00 – $15.00" when a product's sizes or shades cost different amounts.
  function priceRange(p) {
    var low = price(p.price), high = price(p.price_max);
    return high && high !== low ? low + " – " + high : low;
  }
  // A card button's message naming the product and the exact variant, so the advisor changes that one.
  function variantAction(verb, label, productId, variantId, tail) {
    return verb + " " + label + " (" + [productId, variantId].filter(Boolean).join(", ") + ") " + tail;
  }
  // `tag`: "li" inside the list of suggestions, "article" for a product shown on its own.
  function productCard(p, tag) {
    var image = safeUrl(p.image_url);
    function placeholder() { return el("div", { class: "ph", "aria-hidden": "true", text: (p.category || "•").slice(0, 1).toUpperCase() }); }
    var picture = placeholder();
    if (image) {
      // The box is fixed (CSS above, and these attributes before the styles apply): no jump on load. The
      // picture's own size, when known, gives the browser its aspect ratio inside that box.
      var size = p.image_size || { width: 180, height: 110 };
      picture = el("img", { src: image, alt: "", width: String(size.width), height: String(size.height), loading: "lazy", decoding: "async", referrerpolicy: "no-referrer" });
      picture.addEventListener("error", function () { picture.replaceWith(placeholder()); });
    }
    var children = [
      picture,
      el("span", { class: "brand", text: p.brand || "" }),
      el("span", { class: "name", text: p.name || p.id }),
      el("span", { class: "price", text: priceRange(p) })
    ];
    // Sold by another merchant (affiliate mode): only there when the shop has none of its own.
    var where = p.where_to_buy && safeUrl(p.where_to_buy.url) ? p.where_to_buy : null;
    var elsewhereOnly = where && p.in_stock === false;
    if (p.in_stock === false && !elsewhereOnly) children.push(el("span", { class: "oos", text: "Out of stock" }));
    if (p.why && p.why.length) {
      children.push(el("span", { class: "sr", text: "Why it was chosen:" }));
      children.push(el("ul", null, p.why.slice(0, 3).map(function (w) { return el("li", { text: w }); })));
    }
    if (p.sources && p.sources.length) {
      var cited = el("span", { class: "sources" }, ["Sources: "]);
      p.sources.forEach(function (source, i) {
        if (i) cited.appendChild(document.createTextNode(", "));
        cited.appendChild(link(source.url, source.name));
      });
      children.push(cited);
    }
    if (state.capabilities.cart && p.in_stock !== false) {
      // The spoken name starts with the words on the button (so voice control finds "Add to cart"), then
      // says which product: "Add to cart — Moisturizing Cream" (spaced: browsers may add their own).
      var named = [p.brand, p.name].filter(Boolean).join(" ");
      var variants = p.variants || [];
      var picker = null;
      if (variants.length > 1) {
        // Several sizes or shades in stock: the shopper picks one; the button adds exactly that one.
        picker = el("select", { "aria-label": "Size or shade of " + (p.name || p.id) }, variants.map(function (v) {
          return el("option", { value: v.id, text: v.title + (v.price ? " — " + v.price : "") });
        }));
        children.push(picker);
      } else if (variants.length === 1) {
        children.push(el("span", { class: "muted", text: "Adds: " + variants[0].title }));
      }
      children.push(el("button", {
        class: "btn", type: "button",
        onclick: function () {
          var chosen = picker ? variants[picker.selectedIndex] : variants[0];
          ask(chosen ? variantAction("Add", named + " – " + chosen.title, p.id, chosen.id, "to my cart") : "Add " + named + " (" + p.id + ") to my cart");
        }
      }, ["Add to cart", el("span", { class: "sr", text: " — " + (p.name || p.id) })]));
    }
    if (where) {
      children.push(el("a", {
        class: elsewhereOnly ? "btn buy" : "buy", href: safeUrl(where.url), target: "_blank", rel: "noopener noreferrer"
      }, ["Buy at " + where.merchant, el("span", { class: "sr", text: " — " + (p.name || p.id) + " (opens the merchant's site)" })]));
      children.push(el("span", { class: "disclosure", text: where.disclosure }));
    }
    return el(tag || "article", { class: "card", "aria-label": [p.brand, p.name].filter(Boolean).join(" ") }, children);
  }
  // Cards are articles in the conversation, not landmarks: a chat may show the cart twice, and two
  // "Your cart" landmarks would be two doors with one name.
  function cartCard(cart) {
    var box = el("article", { class: "card-wide", "aria-label": "Your cart" }, [el("h3", { text: "Your cart" })]);
    if (!cart.items || !cart.items.length) { box.appendChild(el("p", { class: "muted", text: "Your cart is empty." })); return box; }
    cart.items.forEach(function (item) {
      var label = [item.brand, item.name].filter(Boolean).join(" ") || item.product_id;
      box.appendChild(el("div", { class: "row" }, [
        el("span", { text: (item.quantity || 1) + " × " + label }),
        el("span", { text: price(item.line_total) || price(item.unit_price) })
      ]));
      if (state.capabilities.cart && item.product_id) {
        // Each line's buttons name its variant: with two shades of one product, only this one changes.
        box.appendChild(el("div", { class: "line-actions" }, [
          el("button", { class: "btn secondary", type: "button", onclick: function () { ask(variantAction("Remove one", label, item.product_id, item.variant_id, "from my cart")); } },
            ["\u2212", el("span", { class: "sr", text: " one less " + label })]),
          el("button", { class: "btn secondary", type: "button", onclick: function () { ask(variantAction("Add one more", label, item.product_id, item.variant_id, "to my cart")); } },
            ["+", el("span", { class: "sr", text: " one more " + label })]),
          el("button", { class: "btn secondary", type: "button", onclick: function () { ask(variantAction("Remove", label, item.product_id, item.variant_id, "from my cart")); } },
            ["Remove", el("span", { class: "sr", text: " " + label })])
        ]));
      }
    });
    if (cart.total) box.appendChild(el("div", { class: "row" }, [el("strong", { text: "Total" }), el("strong", { text: price(cart.total) })]));
    if (state.capabilities.checkout) {
      box.appendChild(el("button", { class: "btn", type: "button", text: "Checkout", onclick: function (ev) { ev.target.disabled = true; checkout(); } }));
    }
    return box;
  }
  function checkoutCard(data) {
    var url = safeUrl(data.url);
    var box = el("article", { class: "card-wide", "aria-label": "Checkout" }, [el("h3", { text: "Checkout" })]);
    if (data.total) box.appendChild(el("div", { class: "row" }, [el("span", { text: "Total" }), el("strong", { text: price(data.total) })]));
    if (data.simulated) box.appendChild(el("p", { class: "muted", text: "Simulated checkout: no real payment is taken." }));
    if (url) box.appendChild(el("a", { class: "btn", href: url, target: "_blank", rel: "noopener", text: data.simulated ? "Open the simulated checkout" : "Pay securely" }));
    return box;
  }
  function routineCard(data) {
    var box = el("article", { class: "card-wide", "aria-label": "Your routine" }, [el("h3", { text: "Your routine" })]);
    [["am", "Morning"], ["pm", "Evening"]].forEach(function (slot) {
      var steps = data[slot[0]];
      if (!steps || !steps.length) return;
      box.appendChild(el("strong", { text: slot[1] }));
      var list = el("ol");
      steps.forEach(function (s) {
        var p = s.product || {};
        list.appendChild(el("li", { text: (s.step ? String(s.step).replace(/_/g, " ") + ": " : "") + [p.brand, p.name].filter(Boolean).join(" ") + (price(p.price) ? " — " + price(p.price) : "") + (s.when && s.when !== "daily" ? " · " + s.when : "") + (s.reason ? " (" + s.reason + ")" : "") }));
      });
      box.appendChild(list);
    });
    if (data.total) box.appendChild(el("div", { class: "row" }, [el("span", { text: "Total" }), el("strong", { text: price(data.total) })]));
    (data.warnings || []).forEach(function (w) { box.appendChild(el("p", { class: "muted", text: w })); });
    return box;
  }
  function reportCard(data) {
    var box = el("article", { class: "card-wide", "aria-label": "Skin report" }, [el("h3", { text: "Your skin report" })]);
    if (data.skin_type) box.appendChild(el("div", { class: "row" }, [el("span", { text: "Skin type" }), el("strong", { text: String(data.skin_type) })]));
    (data.metrics || []).forEach(function (m) {
      var value = typeof m.value === "number" ? (Math.round(m.value * 100) / 100) + (m.unit ? " " + m.unit : "") : String(m.value);
      var conf = (m.category ? " · " + m.category : "") + (typeof m.confidence === "number" ? " · " + Math.round(m.confidence * 100) + "% sure" : "");
      box.appendChild(el("div", { class: "row" }, [el("span", { text: String(m.label || m.name).replace(/_/g, " ") }), el("span", { text: value + conf })]));
      if (m.meaning) box.appendChild(el("p", { class: "muted", text: m.meaning }));
    });
    if (data.withheld && data.withheld.length) box.appendChild(el("p", { class: "muted", text: "Not measured from this photo: " + data.withheld.join(", ").replace(/_/g, " ") }));
    if (data.never_judged && data.never_judged.length) box.appendChild(el("p", { class: "muted", text: "Never judged from a photo: " + data.never_judged.join(", ").replace(/_/g, " ") }));
    if (data.notice) box.appendChild(el("p", { class: "muted", text: data.notice }));
    return box;
  }
  function imagesCard(data) {
    var grid = el("div", { class: "images" });
    (data.images || []).forEach(function (img) {
      var src = safeUrl(img.image_url), page = safeUrl(img.page_url) || src;
      if (!src) return;
      var label = (img.title || "Image") + (img.source ? " (" + img.source + ")" : "");
      grid.appendChild(el("a", { href: page, target: "_blank", rel: "noopener noreferrer", title: label }, [el("img", { src: src, alt: label, loading: "lazy", referrerpolicy: "no-referrer" })]));
    });
    return el("article", { class: "card-wide", "aria-label": "Images from the web" }, [el("h3", { text: "From the web" }), grid, el("p", { class: "muted", text: "Images belong to the sites they come from." })]);
  }
  // Refills: what comes, how often, when next, what it costs; each button asks the advisor in words (the
  // advisor then asks for a yes where the change needs one, as for cancelling).
  function deliveryDate(iso) {
    var when = iso ? new Date(iso) : null;
    return when && !isNaN(when) ? when.toLocaleDateString("en-GB", { day: "numeric", month: "long", year: "numeric", timeZone: "UTC" }) : "";
  }
  function subscriptionCard(sub) {
    var named = (sub.products || []).join(", ");
    var box = el("article", { class: "card-wide", "aria-label": "Refills: " + named }, [el("h3", { text: named || "Refills" })]);
    var statusText = { active: "Active", past_due: "Payment due", paused: "Paused", canceled: "Ended", incomplete: "Waiting for the first payment" }[sub.status] || sub.status;
    box.appendChild(el("div", { class: "row" }, [el("span", { text: "Status" }), el("strong", { text: statusText })]));
    if (sub.interval_weeks) box.appendChild(el("div", { class: "row" }, [el("span", { text: "How often" }), el("span", { text: "Every " + sub.interval_weeks + " weeks" })]));
    var next = deliveryDate(sub.next_delivery);
    if (next) box.appendChild(el("div", { class: "row" }, [el("span", { text: "Next delivery" }), el("strong", { text: next })]));
    else if (sub.cancels_at_period_end && deliveryDate(sub.paid_through)) box.appendChild(el("div", { class: "row" }, [el("span", { text: "Ends" }), el("span", { text: deliveryDate(sub.paid_through) })]));
    if (sub.amount) {
      var saving = sub.discount_percent ? " · you save " + sub.discount_percent + " %" : "";
      box.appendChild(el("div", { class: "row" }, [el("span", { text: "Each delivery" }), el("strong", { text: price(sub.amount) + saving })]));
    }
    if (sub.notice) box.appendChild(el("p", { class: "muted", text: sub.notice }));
    if (sub.simulated) box.appendChild(el("p", { class: "muted", text: "Simulated checkout: no real payment is taken." }));
    var url = safeUrl(sub.checkout_url);
    if (url) box.appendChild(el("a", { class: "btn", href: url, target: "_blank", rel: "noopener" }, [sub.simulated ? "Pay the first delivery (simulated)" : "Pay the first delivery", el("span", { class: "sr", text: " — " + named })]));
    var words = {
      skip: ["Skip next delivery", "Skip the next delivery of my refills"],
      pause: ["Pause", "Pause my refills"],
      resume: ["Resume", "Resume my refills"],
      cancel: ["Cancel", "Cancel my refills"]
    };
    var buttons = (sub.actions || []).filter(function (a) { return words[a]; }).map(function (a) {
      return el("button", { class: "btn secondary", type: "button", onclick: function () { ask(words[a][1] + " of " + named + " (" + sub.id + ")"); } },
        [words[a][0], el("span", { class: "sr", text: " — refills of " + named })]);
    });
    if (buttons.length) box.appendChild(el("div", { class: "line-actions" }, buttons));
    return box;
  }
  function subscriptionsCard(data) {
    var subs = data.subscriptions || [];
    if (subs.length === 1) return subscriptionCard(subs[0]);
    var box = el("article", { class: "card-wide", "aria-label": "Your refills" }, [el("h3", { text: "Your refills" })]);
    if (!subs.length) box.appendChild(el("p", { class: "muted", text: "No refills yet." }));
    subs.forEach(function (sub) { box.appendChild(subscriptionCard(sub)); });
    return box;
  }
  function orderCard(order) {
    return el("div", { class: "row" }, [el("span", { text: order.id || "" }), el("span", { text: [order.status, price(order.total)].filter(Boolean).join(" · ") })]);
  }
  function card(kind, data) {
    if (kind === "products") return el("ul", { class: "cards", "aria-label": "Suggested products" }, (data.products || []).map(function (p) { return productCard(p, "li"); }));
    if (kind === "product") return el("div", { class: "cards" }, [productCard(data)]);
    if (kind === "cart") return cartCard(data);
    if (kind === "checkout") return checkoutCard(data);
    if (kind === "routine") return routineCard(data);
    if (kind === "report") return reportCard(data);
    if (kind === "images") return imagesCard(data);
    if (kind === "order") return el("article", { class: "card-wide", "aria-label": "Order" }, [el("h3", { text: "Order" }), orderCard(data)]);
    if (kind === "subscriptions") return subscriptionsCard(data);
    if (kind === "orders") return el("article", { class: "card-wide", "aria-label": "Your orders" }, [el("h3", { text: "Your orders" })].concat((data.orders || []).map(orderCard)));
    return null;
  }
  var CARD_KINDS = ["products", "product", "cart", "checkout", "routine", "report", "images", "order", "orders", "subscriptions"];

  // --- talking to Shine ----------------------------------------------------------------------------
  function readStream(response, onEvent) {
    var reader = response.body.getReader(), decoder = new TextDecoder(), buffer = "";
    function pump() {
      return reader.read().then(function (chunk) {
        if (chunk.done) return;
        buffer += decoder.decode(chunk.value, { stream: true });
        var frames = buffer.split(/\r?\n\r?\n/);
        buffer = frames.pop();
        frames.forEach(function (frame) {
          var id = null, name = "message", data = [];
          frame.split(/\r?\n/).forEach(function (line) {
            if (!line || line.charAt(0) === ":") return;
            var colon = line.indexOf(":"), field = colon < 0 ? line : line.slice(0, colon);
            var value = colon < 0 ? "" : line.slice(colon + 1).replace(/^ /, "");
            if (field === "id") id = value; else if (field === "event") name = value; else if (field === "data") data.push(value);
          });
          if (data.length) onEvent(name, JSON.parse(data.join("\n")), id);
        });
        return pump();
      });
    }
    return pump();
  }

  function converse(payload, shownText, thumb) {
    // A card's button pressed while a reply is still being written (the cards come before the words)
    // runs once that reply is over, instead of doing nothing.
    if (state.busy) { state.next = [payload, shownText]; return; }
    // The page the shopper chats from: after checkout, "Return to the shop" leads back to it. Shine keeps
    // it only for its own pages and SHINE_ALLOWED_ORIGINS (other origins cannot post here at all).
    payload.page_url = location.href.split("#")[0];
    var mine = bubble("user", shownText);
    if (thumb) mine.body.insertBefore(el("img", { class: "thumb", src: thumb, alt: "Your photo" }), mine.body.firstChild);
    var reply = null, lastId = 0, runId = null, finished = false, resumes = 0, running = {};
    var frame = 0;
    setBusy(true, "Thinking…");

    function ensureReply() { if (!reply) reply = bubble("bot", ""); return reply; }
    function paint() { frame = 0; render(reply.text, reply.body); scroll(); }
    function onEvent(name, data, id) {
      if (id) lastId = parseInt(id, 10) || lastId;
      if (name === "session") {
        runId = data.run_id; remember(data.chat_token);
      } else if (name === "text") {
        ensureReply().text += data.text;
        if (!frame) frame = requestAnimationFrame(paint);
      } else if (name === "tool_started") {
        running[data.id] = data.summary || data.name; setBusy(true, (data.summary || data.name) + "…");
      } else if (name === "tool_progress") {
        if (data.message) setBusy(true, data.message.charAt(0).toUpperCase() + data.message.slice(1) + "…");
      } else if (name === "tool_finished") {
        delete running[data.id];
        var left = Object.keys(running);
        setBusy(true, left.length ? running[left[left.length - 1]] + "…" : "Thinking…");
      } else if (CARD_KINDS.indexOf(name) >= 0) {
        reply = null;
        var node = card(name, data);
        if (node) add(node);
      } else if (name === "notice") {
        if (data.code !== "offline_advisor") notice(data.code, data.message);
      } else if (name === "error") {
        failure(data.message || "Something went wrong.");
      } else if (name === "done") {
        finished = true;
      }
    }
    function end() {
      if (frame) { cancelAnimationFrame(frame); paint(); }
      setBusy(false);
      input.focus();
      if (mine.node.isConnected) reveal(mine.node);
      if (state.next) { var next = state.next; state.next = null; converse(next[0], next[1]); }
    }
    function resume() {
      if (finished) return end();
      if (!runId || resumes >= MAX_RESUMES) { failure("The connection dropped. Reload to see the full answer."); return end(); }
      resumes += 1;
      if (lastId) setBusy(true, "Reconnecting…");
      var delay = lastId ? Math.min(4000, 250 * Math.pow(2, resumes)) : 0;
      setTimeout(function () {
        fetch(BASE + "/api/chat/runs/" + encodeURIComponent(runId) + "/events", { credentials: "include", headers: headers({ "Last-Event-ID": String(lastId) }) })
          .then(function (response) {
            if (!response.ok) throw new Error("resume " + response.status);
            return readStream(response, onEvent);
          })
          .then(resume, resume);
      }, delay);
    }
    fetch(BASE + "/api/chat", { method: "POST", credentials: "include", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify(payload) })
      .then(function (response) {
        if (response.status === 409 && response.headers.get("X-Shine-Run")) {
          // A reply (from another tab, or before a reload) is still being written: follow it instead.
          runId = response.headers.get("X-Shine-Run");
          mine.node.remove();
          notice("busy", "Still answering your previous message…");
          return;
        }
        if (!response.ok) {
          return response.json().catch(function () { return {}; }).then(function (body) {
            failure(body.message || ("The advisor is unavailable (HTTP " + response.status + ")."));
            finished = true;
          });
        }
        remember(response.headers.get("X-Shine-Chat"));
        runId = response.headers.get("X-Shine-Run");
        return readStream(response, onEvent);
      })
      .then(resume, resume);
  }

  function ask(text) { if (!state.open) open(); converse({ message: text }, text); }
  function checkout() { converse({ confirm_checkout: true, message: "Check out my cart." }, "Check out my cart."); }

  function loadHistory() {
    // While the first load is on its way, callers wait for it (the "Your data" card needs to know who is signed in).
    if (state.loaded) return state.loading || Promise.resolve();
    state.loaded = true;
    state.loading = fetch(BASE + "/api/chat", { credentials: "include", headers: headers() })
      .then(function (response) {
        if (response.status === 401 && state.widgetToken) {
          // The sign-in ended (signed out elsewhere, or idle too long): carry on as a guest.
          dropSignIn(); state.loaded = false;
          return loadHistory().then(function () { return null; });
        }
        return response.ok ? response.json() : null;
      })
      .then(function (body) {
        if (!body) return;
        state.capabilities = body.capabilities || {};
        state.signedIn = !!body.signed_in;
        state.account = body.account || null;
        state.canSignIn = !!body.can_sign_in;
        attach.hidden = !state.capabilities.photos; keepRow.hidden = !state.capabilities.photos;
        (body.messages || []).forEach(function (m) { bubble(m.role, m.text); });
        if (!body.messages || !body.messages.length) {
          bubble("bot", "Hi! I'm Shine, this shop's skincare advisor. Tell me about your skin, your budget, or what you're looking for" + (state.capabilities.photos ? " — or send a selfie for an analysis." : "."));
        }
      })
      .catch(function () { failure("Shine is not reachable right now."); });
    return state.loading;
  }

  // --- your data: download, delete, close the account (the advisor cannot; only these buttons can) -----
  function dataCard() {
    var box = el("article", { class: "card-wide", "aria-label": "Your data" }, [
      el("h3", { text: "Your data" }),
      el("p", { class: "muted", text: "Shine keeps your chats, the profile and ratings you gave, skin reports and photos you chose to keep, and your cart. Orders stay with the shop for its records." })
    ]);
    // Sign-in links only where Shine serves the page itself: on a shop's own origin the session cookie
    // would be a third-party cookie that browsers drop, so a guest chat (token header) is what works there.
    var here = location.pathname + location.search;
    var sameOrigin = BASE === location.origin;
    if (state.signedIn && state.account) {
      var who = state.account.name || state.account.email || "your account";
      var signOut = state.widgetToken
        ? el("button", { class: "btn secondary", type: "button", text: "Sign out", onclick: widgetSignOut })
        : sameOrigin ? el("a", { href: BASE + "/auth/logout", text: "Sign out" }) : null;
      box.appendChild(el("p", { class: "muted" }, ["Signed in as " + who + ". ", signOut]));
    } else if (sameOrigin) {
      box.appendChild(el("p", { class: "muted" }, [
        "You are chatting as a guest. ",
        state.canSignIn ? el("a", { href: BASE + "/auth/login?next=" + encodeURIComponent(here), text: "Sign in" }) : null,
        state.canSignIn ? " to keep your chats, reports and orders on every device." : null
      ]));
    } else {
      // The popup's verifier needs Web Crypto, which browsers give https pages (and loopback) only.
      var popupSignIn = state.canSignIn && !!(window.crypto && crypto.subtle && window.TextEncoder);
      box.appendChild(el("p", { class: "muted", text: "You are chatting as a guest." + (popupSignIn ? " Sign in to keep your chats, reports and orders on every device." : "") }));
      if (popupSignIn) box.appendChild(signInControls());
    }
    var actions = el("div", { class: "actions" });
    var outcome = el("p", { class: "muted", role: "status" });
    box.appendChild(outcome); box.appendChild(actions);
    function choices() {
      actions.textContent = "";
      actions.appendChild(el("button", { class: "btn secondary", type: "button", text: "Download my data", onclick: download }));
      actions.appendChild(el("button", { class: "btn secondary", type: "button", text: "Delete my data…", onclick: function () {
        confirmStep("Delete your chats, profile, ratings, skin reports, kept photos and cart? This cannot be undone.", "Yes, delete my data", "/api/my-data/delete");
      } }));
      if (state.signedIn) {
        actions.appendChild(el("button", { class: "btn secondary", type: "button", text: "Close my account…", onclick: function () {
          confirmStep("Delete your data and your account, and sign out everywhere? This cannot be undone.", "Yes, close my account", "/api/account/close");
        } }));
      }
    }
    function confirmStep(question, yes, path) {
      actions.textContent = "";
      outcome.textContent = question;
      var sure = el("button", { class: "btn danger", type: "button", text: yes, onclick: function () { sure.disabled = true; erase(path); } });
      actions.appendChild(sure);
      actions.appendChild(el("button", { class: "btn secondary", type: "button", text: "Cancel", onclick: function () { outcome.textContent = ""; choices(); } }));
      sure.focus();
    }
    function download() {
      fetch(BASE + "/api/my-data", { credentials: "include", headers: headers() })
        .then(function (response) {
          if (response.status === 404) { outcome.textContent = "Shine holds nothing about you yet."; return null; }
          if (!response.ok) throw new Error("failed");
          return response.blob();
        })
        .then(function (blob) {
          if (!blob) return;
          var a = el("a", { href: URL.createObjectURL(blob), download: "shine-my-data.json" });
          root.appendChild(a); a.click(); a.remove();
          outcome.textContent = "Downloaded shine-my-data.json.";
        })
        .catch(function () { outcome.textContent = "The download failed; try again."; });
    }
    function erase(path) {
      fetch(BASE + path, { method: "POST", credentials: "include", headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify({ confirm: true }) })
        .then(function (response) { return response.json().then(function (data) { return { ok: response.ok, status: response.status, data: data }; }); })
        .then(function (result) {
          if (!result.ok && result.status !== 404) { outcome.textContent = result.data.message || "That did not work; try again."; choices(); return; }
          forget(); clearUpload(); log.textContent = "";
          if (path === "/api/account/close") { state.signedIn = false; state.account = null; }
          var kept = (result.data.kept || []).map(function (k) { return "- " + k; }).join("\n");
          bubble("bot", result.ok ? result.data.message + (kept ? "\n\nWhat stays:\n" + kept : "") : "Shine holds nothing about you.");
        })
        .catch(function () { outcome.textContent = "That did not work; try again."; choices(); });
    }
    choices();
    return box;
  }
  // --- sign-in from a shop's own site: a popup on Shine's origin hands back a one-time code ----------
  var signInUi = null; // the status line and retry button of the latest "Your data" card
  function b64url(bytes) {
    var text = "";
    for (var i = 0; i < bytes.length; i++) text += String.fromCharCode(bytes[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }
  function randomText(size) { var bytes = new Uint8Array(size); crypto.getRandomValues(bytes); return b64url(bytes); }
  // The verifier and the popup's address are made before the click, so the click opens the window at once
  // (browsers let a page open a window only in direct answer to a click).
  function prepareSignIn() {
    if (state.signIn || !(window.crypto && crypto.subtle && window.TextEncoder)) return;
    var attempt = { verifier: randomText(32), state: randomText(16), url: null, popup: null, exchanging: false };
    state.signIn = attempt;
    crypto.subtle.digest("SHA-256", new TextEncoder().encode(attempt.verifier)).then(function (digest) {
      attempt.url = BASE + "/auth/widget/start?origin=" + encodeURIComponent(location.origin) +
        "&challenge=" + b64url(new Uint8Array(digest)) + "&state=" + attempt.state;
    });
  }
  function signInSays(text, offerRetry) {
    if (signInUi && signInUi.status.isConnected) {
      signInUi.status.textContent = text;
      signInUi.retry.hidden = !offerRetry;
      if (offerRetry) signInUi.retry.focus();
    } else if (text) {
      notice("sign_in", text);
    }
  }
  function openSignIn() {
    var attempt = state.signIn;
    if (!attempt || !attempt.url) { prepareSignIn(); signInSays("Sign-in is getting ready; press Sign in again."); return; }
    var popup = window.open(attempt.url, "shine-sign-in", "popup,width=480,height=640");
    if (!popup) {
      signInSays("Your browser blocked the sign-in window. Press “Open the sign-in window” to open it.", true);
      return;
    }
    attempt.popup = popup;
    signInSays("Finish signing in in the window that opened.", false);
    var watch = setInterval(function () {
      if (state.signIn !== attempt) { clearInterval(watch); return; }
      if (!popup.closed) return;
      clearInterval(watch);
      // A popup that signed in posts its code just before closing: give that message time to arrive.
      setTimeout(function () {
        if (state.signIn !== attempt || attempt.exchanging) return;
        state.signIn = null; prepareSignIn();
        signInSays("Sign-in was not finished. You are still chatting as a guest.", false);
      }, 1000);
    }, 400);
  }
  function signInControls() {
    prepareSignIn();
    var status = el("p", { class: "muted", role: "status" });
    var retry = el("button", { class: "btn", type: "button", text: "Open the sign-in window", hidden: true, onclick: openSignIn });
    signInUi = { status: status, retry: retry };
    return el("div", { class: "actions" }, [
      el("button", { class: "btn", type: "button", text: "Sign in", onclick: openSignIn }), retry, status
    ]);
  }
  window.addEventListener("message", function (ev) {
    var data = ev.data;
    if (!data || typeof data !== "object" || data.type !== "shine:signed-in") return;
    var attempt = state.signIn;
    if (ev.origin !== SHINE_ORIGIN || !attempt || ev.source !== attempt.popup || data.state !== attempt.state || attempt.exchanging) {
      if (window.console) console.warn("Shine: ignored a sign-in message from " + ev.origin);
      return;
    }
    attempt.exchanging = true;
    fetch(BASE + "/auth/widget/token", {
      method: "POST", credentials: "include", headers: headers({ "Content-Type": "application/json" }),
      body: JSON.stringify({ code: String(data.code || ""), verifier: attempt.verifier })
    })
      .then(function (response) { return response.json().then(function (body) { return { ok: response.ok, body: body }; }); })
      .then(function (result) {
        state.signIn = null;
        if (!result.ok || !result.body.token) {
          prepareSignIn();
          signInSays("Signing in did not work. Try again.", false);
          return;
        }
        keepSignIn(result.body.token);
        var account = result.body.account || {};
        state.loaded = false; log.textContent = "";
        return loadHistory().then(function () {
          bubble("bot", "You're signed in as " + (account.name || account.email || "your account") + ".");
          scroll();
        });
      })
      .catch(function () { state.signIn = null; prepareSignIn(); signInSays("Signing in did not work. Try again.", false); });
  });
  function widgetSignOut() {
    fetch(BASE + "/auth/widget/sign-out", { method: "POST", credentials: "include", headers: headers() })
      .catch(function () { /* signed out here all the same */ })
      .then(function () {
        dropSignIn(); forget(); clearUpload();
        state.signedIn = false; state.account = null; state.loaded = false; log.textContent = "";
        return loadHistory().then(function () { bubble("bot", "You're signed out. You can keep chatting as a guest."); });
      });
  }

  dataButton.addEventListener("click", function () {
    if (state.busy) return;
    (state.loading || Promise.resolve()).then(function () {
      var existing = log.querySelector("article[aria-label='Your data']");
      if (existing) existing.remove();
      var box = add(dataCard());
      var first = box.querySelector("button");
      if (first) first.focus();
    });
  });

  // --- photos ----------------------------------------------------------------------------------------
  function clearUpload() {
    if (state.upload && state.upload.preview) URL.revokeObjectURL(state.upload.preview);
    state.upload = null; pending.hidden = true; file.value = "";
  }
  file.addEventListener("change", function () {
    var chosen = file.files && file.files[0];
    if (!chosen) return;
    clearUpload();
    var preview = URL.createObjectURL(chosen);
    state.upload = { preview: preview, id: null };
    pendingImg.src = preview; pendingText.textContent = "Uploading photo…"; pending.hidden = false;
    var body = new FormData();
    body.append("photo", chosen);
    if (keep.checked) body.append("keep", "true");
    send.disabled = true;
    fetch(BASE + "/api/uploads", { method: "POST", credentials: "include", headers: headers(), body: body })
      .then(function (response) { return response.json().then(function (data) { return { ok: response.ok, data: data }; }); })
      .then(function (result) {
        send.disabled = state.busy;
        if (!result.ok) { clearUpload(); failure(result.data.message || "That photo could not be used."); return; }
        if (!state.upload) return;
        state.upload.id = result.data.upload_id;
        pendingText.textContent = "Photo ready" + (result.data.kept ? " (kept)" : "") + ". Add a message or press Send.";
      })
      .catch(function () { send.disabled = state.busy; clearUpload(); failure("The photo could not be uploaded."); });
  });
  pendingRemove.addEventListener("click", function () { clearUpload(); input.focus(); });

  // --- wiring ----------------------------------------------------------------------------------------
  // On a small screen the panel covers the page: it is modal there, and Tab stays inside it.
  var covering = window.matchMedia ? window.matchMedia("(max-width:480px)") : null;
  function modal() { return !!(covering && covering.matches); }
  function markModal() { panel.setAttribute("aria-modal", modal() ? "true" : "false"); }
  if (covering && covering.addEventListener) covering.addEventListener("change", markModal);
  function focusables() {
    return Array.prototype.filter.call(panel.querySelectorAll("button,[href],textarea,input,[tabindex]"), function (node) {
      return !node.disabled && node.tabIndex >= 0 && node.getClientRects().length > 0;
    });
  }
  function trapTab(ev) {
    if (ev.key !== "Tab" || !modal()) return;
    var items = focusables();
    if (!items.length) return;
    var first = items[0], last = items[items.length - 1], active = root.activeElement;
    if (ev.shiftKey && (active === first || items.indexOf(active) < 0)) { ev.preventDefault(); last.focus(); }
    else if (!ev.shiftKey && (active === last || items.indexOf(active) < 0)) { ev.preventDefault(); first.focus(); }
  }
  function open() {
    state.open = true; panel.hidden = false; launcher.hidden = true;
    launcher.setAttribute("aria-expanded", "true");
    markModal();
    loadHistory().then(scroll);
    input.focus();
  }
  function close() {
    state.open = false; panel.hidden = true; launcher.hidden = false;
    launcher.setAttribute("aria-expanded", "false");
    launcher.focus();
  }
  launcher.addEventListener("click", open);
  closeButton.addEventListener("click", close);
  panel.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") { ev.preventDefault(); close(); return; }
    trapTab(ev);
  });
  resetButton.addEventListener("click", function () {
    if (state.busy) return;
    fetch(BASE + "/api/chat/reset", { method: "POST", credentials: "include", headers: headers() })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (!body) return;
        remember(body.chat_token); log.textContent = ""; clearUpload();
        bubble("bot", "New chat started. How can I help?");
        input.focus();
      });
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) { ev.preventDefault(); form.requestSubmit ? form.requestSubmit() : submit(ev); }
  });
  input.addEventListener("input", function () { input.style.height = "auto"; input.style.height = Math.min(120, input.scrollHeight) + "px"; });
  function submit(ev) {
    ev.preventDefault();
    if (state.busy) return;
    var text = input.value.trim();
    if (state.upload && !state.upload.id) return; // still uploading
    if (!text && !(state.upload && state.upload.id)) return;
    var payload = { message: text };
    var thumb = null;
    if (state.upload && state.upload.id) { payload.uploads = [state.upload.id]; thumb = state.upload.preview; state.upload.preview = null; }
    state.upload = null; pending.hidden = true; file.value = "";
    input.value = ""; input.style.height = "auto";
    converse(payload, text || "Please analyse my photo.", thumb);
  }
  form.addEventListener("submit", submit);

  function mount() { document.body.appendChild(host); }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);
})();
