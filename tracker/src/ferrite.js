// Ferrite tracker. Built by `npm run build` (terser) into ferrite/edge/static/script.js;
// tests/test_tracker.py fails when the committed build is stale.
// No cookies, no storage writes, no fingerprinting: a page URL, a referrer, a site, an
// event name and the props the site owner chose.
((w, d, l, n) => {
  const s = d.currentScript;
  const has = (k) => s.hasAttribute("data-" + k);
  const attr = (k) => s.getAttribute("data-" + k);
  const on = (target, type, f) => target.addEventListener(type, f, true);
  const api = attr("api") || new URL("/api/event", s.src);
  const site = attr("site") || l.hostname.replace(/^www\./, "");
  const hash = has("hash");
  // data-exclude="/admin/*,/preview": paths not to track; * matches anything.
  const excluded = RegExp("^(" + (attr("exclude") || "-").replace(/\*/g, ".*").replace(/,/g, "|") + ")$");
  const downloads = RegExp("\\.(" + (attr("downloads") ||
    "pdf|zip|gz|dmg|exe|csv|docx|xlsx|mp3|mp4").replace(/,/g, "|") +
    ")$", "i");
  let cfg = {}, queue = [], timer = 0, last, observers = [], off;
  try {
    off = localStorage.ferrite_ignore == "true";
    cfg = JSON.parse(s.text || 0) || cfg;
  } catch {}
  off = off ||
    // localhost, 127.x, [::1] and file: (no host at all)
    (!has("allow-local") && /^(localhost|127\..*|\[::1\]|)$/.test(l.hostname)) ||
    (n.webdriver && !has("allow-automation"));

  const flush = (beacon) => {
    timer = 0; // a timer still pending later finds the queue empty
    if (queue[0]) {
      const body = JSON.stringify(queue);
      queue = [];
      (beacon && n.sendBeacon(api, body)) || fetch(api, { method: "POST", body, keepalive: true });
    }
  };
  const send = (name, props) => {
    if (off || excluded.test(l.pathname)) return;
    queue.push({ n: name, u: l.href, d: site, r: d.referrer, p: props, h: hash });
    if (queue.length > 9) flush();
    else timer = timer || setTimeout(flush, 1000);
  };

  const page = () => {
    const url = hash ? l.href : l.href.split("#")[0];
    if (url == last) return;
    last = url;
    send("pageview");
    // Each element reports once per page view, when ratioVisible percent of it shows.
    observers.forEach((o) => o.disconnect());
    observers = (cfg.visibilityTrackers || []).map((t) => {
      const min = (t.ratioVisible || 50) / 100;
      const o = new IntersectionObserver((entries) => entries.forEach((e) => {
        if (e.intersectionRatio >= min) { o.unobserve(e.target); send(t.name); }
      }), { threshold: min });
      for (const el of d.querySelectorAll(t.selector)) o.observe(el);
      return o;
    });
  };

  // Clicks: data-ferrite-event elements, outbound links and downloads (both opt-in).
  on(d, "click", (e) => {
    const up = (selector) => e.target.closest(selector);
    const el = up("[data-ferrite-event]");
    const a = up("a[href]");
    if (el) {
      const props = {};
      for (const at of el.attributes) {
        if (!at.name.indexOf("data-ferrite-prop-")) props[at.name.slice(18)] = at.value;
      }
      send(el.dataset.ferriteEvent, props);
    }
    if (a) {
      if (has("outbound") && a.host != l.host) send("Outbound Link", { url: a.href });
      else if (has("downloads") && downloads.test(a.pathname)) send("File Download", { url: a.href });
      flush(1); // the page may be leaving: send by beacon now
    }
  });
  (cfg.eventTrackers || []).forEach((t) => on(d, t.event || "click", (e) => {
    if (e.target.closest(t.selector)) send(t.name);
  }));

  const h = history;
  for (const k of ["pushState", "replaceState"]) {
    const original = h[k];
    h[k] = function () { original.apply(this, arguments); page(); };
  }
  on(w, "popstate", page);
  if (hash) on(w, "hashchange", page);
  on(w, "pagehide", () => flush(1));
  on(d, "visibilitychange", () => d.hidden && flush(1));

  // Calls made before this script loaded wait in window.ferrite.q.
  const early = (w.ferrite || 0).q || [];
  w.ferrite = send;
  page();
  for (const args of early) send(...args);
})(window, document, location, navigator);
