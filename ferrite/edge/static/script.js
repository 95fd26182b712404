/* Ferrite tracker (interim build: pageviews, SPA navigation and ferrite() custom events;
   the full tracker replaces this file). No cookies, no storage, no fingerprinting. */
(function () {
  var s = document.currentScript, w = window, l = location;
  if (!s || /^localhost$|^127\.|^\[::1\]$/.test(l.hostname) || l.protocol === "file:" ||
      navigator.webdriver) return;
  var api = s.getAttribute("data-api") || new URL("/api/event", s.src).href;
  var site = s.getAttribute("data-site") || l.hostname.replace(/^www\./, "");
  var last;
  function send(n, p) {
    var body = JSON.stringify({n: n, u: l.href, d: site, r: document.referrer || null, p: p});
    if (!(navigator.sendBeacon && navigator.sendBeacon(api, body)))
      fetch(api, {method: "POST", body: body, keepalive: true});
  }
  function page() { if (last !== l.href) { last = l.href; send("pageview"); } }
  var q = (w.ferrite && w.ferrite.q) || [];
  w.ferrite = function (n, p) { send(n, p); };
  for (var i = 0; i < q.length; i++) w.ferrite.apply(null, q[i]);
  var push = history.pushState;
  history.pushState = function () { push.apply(this, arguments); page(); };
  addEventListener("popstate", page);
  page();
})();
