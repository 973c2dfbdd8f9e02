// swf-lite pages: keep ages ticking and refresh live regions when the change stream says their
// resources changed. No framework; works without it too (the pages are complete server-side).
"use strict";
(function () {
  function ago(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s ago";
    if (s < 3600) return Math.floor(s / 60) + " min ago";
    if (s < 86400) return Math.floor(s / 3600) + " h ago";
    return Math.floor(s / 86400) + " d ago";
  }
  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    if (s < 3600) return Math.floor(s / 60) + " min " + (s % 60) + " s";
    return Math.floor(s / 3600) + " h " + Math.floor((s % 3600) / 60) + " min";
  }
  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-t]").forEach(function (el) {
      const t = Date.parse(el.dataset.t);
      if (!isNaN(t)) el.textContent = ago((now - t) / 1000);
    });
    document.querySelectorAll("[data-since]").forEach(function (el) {
      const t = Date.parse(el.dataset.since);
      if (!isNaN(t)) el.textContent = duration((now - t) / 1000);
    });
  }
  setInterval(tick, 1000);

  // Close the "More" menu when clicking elsewhere.
  document.addEventListener("click", function (ev) {
    document.querySelectorAll("details.more[open]").forEach(function (d) {
      if (!d.contains(ev.target)) d.removeAttribute("open");
    });
  });

  const main = document.getElementById("main");
  const wanted = main && main.dataset.live ? main.dataset.live.split(",").filter(Boolean) : [];
  const regions = Array.from(document.querySelectorAll(".live-region[data-fragment]"));
  if (!wanted.length || !regions.length || !window.EventSource) return;

  const dot = document.getElementById("live-state");
  const query = wanted.indexOf("*") >= 0 ? "" : "?resources=" + encodeURIComponent(wanted.join(","));
  let pending = false;
  let busy = false;

  const arrivedAt = new Map();  // key -> time it arrived: the highlight survives the next refresh
  function keys(el) {
    return new Set(Array.from(el.querySelectorAll("[data-key]")).map(function (e) { return e.dataset.key; }));
  }
  async function refresh() {
    if (busy) { pending = true; return; }
    busy = true;
    pending = false;
    try {
      for (const el of regions) {
        const u = new URL(window.location.href);
        u.searchParams.set("fragment", el.dataset.fragment);
        const resp = await fetch(u.toString(), { headers: { "Accept": "text/html" }, credentials: "same-origin" });
        if (!resp.ok) continue;
        const before = keys(el);
        el.innerHTML = await resp.text();
        const now = Date.now();
        el.querySelectorAll("[data-key]").forEach(function (e) {
          if (!before.has(e.dataset.key) && !arrivedAt.has(e.dataset.key)) arrivedAt.set(e.dataset.key, now);
          const t = arrivedAt.get(e.dataset.key);
          if (t !== undefined && now - t < 2500) e.classList.add("arrived");
        });
      }
      tick();
    } finally {
      busy = false;
      if (pending) setTimeout(refresh, 250);
    }
  }
  let timer = null;
  function schedule() {
    if (timer) return;
    timer = setTimeout(function () { timer = null; refresh(); }, 200);
  }
  function state(on) {
    if (!dot) return;
    dot.classList.toggle("on", on);
    dot.classList.toggle("off", !on);
    dot.title = on ? "Live updates on" : "Live updates paused; reconnecting";
  }
  // EventSource retries network errors by itself but gives up on an HTTP error (e.g. 503 when every
  // stream slot is taken): then try again later, with some jitter.
  let source = null;
  function connect() {
    source = new EventSource("/api/changes/stream/" + query);
    source.addEventListener("open", function () { state(true); });
    source.addEventListener("change", schedule);
    source.addEventListener("error", function () {
      state(false);
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000 + Math.random() * 5000);
    });
  }
  connect();
  // Give the stream slot back as soon as the page goes away.
  window.addEventListener("pagehide", function () { if (source) source.close(); });
})();
