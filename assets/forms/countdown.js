/* The floor's plain pages (andon, phone): each issue's clock counts on every second from the
   absolute instants the server drew it with (data-since: raised, data-due: the limit in
   force), in the wall's duration format and the page's words (body data-words). A page
   that reloads itself says so in its <meta http-equiv="refresh">; nothing here fetches. */
(function () {
  "use strict";
  const words = JSON.parse(document.body.dataset.words || "{}");

  function fill(template, values) {
    return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? values[name] : whole));
  }

  function duration(ms) {
    const total = Math.max(0, Math.floor(Math.abs(ms) / 1000));
    const d = Math.floor(total / 86400), h = Math.floor((total % 86400) / 3600);
    const m = Math.floor((total % 3600) / 60), s = total % 60;
    if (d) { return fill(words.duration_dh, {d: d.toLocaleString("en-US"), h: h}); }
    if (h) { return fill(words.duration_hm, {h: h, m: m}); }
    return fill(words.duration_ms, {m: m, s: s});
  }

  function tick() {
    const now = Date.now();
    document.querySelectorAll("[data-since]").forEach((el) => {
      el.textContent = fill(words.floor_waited, {duration: duration(now - Number(el.dataset.since))});
    });
    document.querySelectorAll("[data-due]").forEach((el) => {
      const left = Number(el.dataset.due) - now;
      el.textContent = fill(left < 0 ? words.floor_over : words.floor_left, {duration: duration(left)});
      el.classList.toggle("overdue", left < 0);
      const row = el.closest(".floor-row");
      if (row) { row.classList.toggle("overdue", left < 0); }
    });
  }

  if (words.floor_waited) {
    tick();
    setInterval(tick, 1000);
  }
})();
