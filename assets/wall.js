/* Clientside callbacks of the wall: everything that changes every second runs here,
   in the browser, so a countdown never costs a server round trip. */
/* What the shell knows beyond the last status: since when a wall page is shown, when the
   server last answered, when a refresh last came back as an HTTP error (a proxy's 502, a
   worker that died mid-answer, a request the server refused as malformed) rather than not
   at all, and what the page was loaded as (its
   build and kiosk mode, from the shell's config). */
window.floorlinkShell = {wallSince: 0, answeredAt: 0, serverMs: 0, serverErrorAt: 0, quietShown: "",
                         build: "", kiosk: ""};
(function () {
  const fetchPage = window.fetch.bind(window);
  const screenId = floorlinkScreenId();
  /* Every callback says which screen asks (the id this browser keeps), the build its page
     was loaded with and whether it is a kiosk: the server's fleet page lists them
     (data/fleet.py). A refusal of the screen itself (401: its token revoked, its sign-in
     gone) is shown over the wall in the server's own words; the next answer clears it. */
  window.fetch = function (resource, options) {
    const callback = String(resource && resource.url || resource).indexOf("_dash-update-component") >= 0;
    if (callback) {
      const headers = new Headers((options && options.headers) || {});
      headers.set("X-FloorLink-Screen", screenId);
      headers.set("X-FloorLink-Build", window.floorlinkShell.build);
      headers.set("X-FloorLink-Kiosk", window.floorlinkShell.kiosk);
      options = Object.assign({}, options, {headers: headers});
    }
    return fetchPage(resource, options).then(function (response) {
      if (!callback) { return response; }
      if (response.status >= 400 && response.status !== 401) {
        window.floorlinkShell.serverErrorAt = Date.now();   // it answered, with an error
      }
      if (response.status === 401) {
        response.clone().json().then(floorlinkRefused, function () { floorlinkRefused(null); });
      } else if (response.ok) {
        floorlinkRefused(undefined);
      }
      return response;
    });
  };
})();

/* The server's clock at this browser's instant `now`: the browser's clock plus the server's
   clock less the browser's when the last answer arrived (the shell notes both); none yet:
   the two clocks are taken to agree. What the server dates (its snapshots' instants, their
   boundaries) is judged by it, so a screen whose own clock is off neither calls fresh data
   stale nor asks off the boundaries. */
function floorlinkServerNow(now) {
  const shell = window.floorlinkShell || {};
  return now + (shell.serverMs && shell.answeredAt ? shell.serverMs - shell.answeredAt : 0);
}

/* The id this browser keeps for its screen: 32 random hex digits in localStorage, made on
   its first visit; for the page's life alone when storage is refused. */
function floorlinkScreenId() {
  const made = () => Array.from(window.crypto.getRandomValues(new Uint8Array(16)),
                                (b) => b.toString(16).padStart(2, "0")).join("");
  try {
    let id = window.localStorage.getItem("floorlink.screen");
    if (!/^[0-9a-f]{32}$/.test(id || "")) {
      id = made();
      window.localStorage.setItem("floorlink.screen", id);
    }
    return id;
  } catch (refused) {
    return made();
  }
}

/* The server's refusal over the whole wall, as its 401 page says it: Chinese, then English,
   as text. `answer`: the refusal's JSON (null when it had none: the HTTP status alone);
   undefined: an answer came through, the notice goes. */
function floorlinkRefused(answer) {
  let notice = document.getElementById("wall-refused");
  if (answer === undefined) {
    if (notice) { notice.remove(); }
    return;
  }
  if (!notice) {
    notice = document.createElement("div");
    notice.id = "wall-refused";
    notice.className = "wall-refused";
    notice.setAttribute("role", "alert");
    document.body.appendChild(notice);
  }
  const lines = answer && (answer.message_zh || answer.message)
    ? [[answer.message_zh, "zh"], [answer.message, "en"]] : [["401", ""]];
  notice.replaceChildren(...lines.filter((line) => line[0]).map(function (line) {
    const p = document.createElement("p");
    p.textContent = line[0];
    if (line[1]) { p.lang = line[1]; }
    return p;
  }));
  notice.dataset.word = (answer && answer.error) || "";
}

window.dash_clientside = Object.assign({}, window.dash_clientside, {
  floorlink: {
    /* Clock, freshness, stale banner, data-error marker, no-new-data notice, rotation and
       reload-after-deploy, once a second. The banner names what failed: the database (the
       server says so), the server (it answered with an error), or nothing answered for two
       intervals. A screen replaying an instant shows that instant on its clock; its data is
       never stale, as the server dates each of its refreshes by the answer. */
    shellTick: function (n, status, config, pathname) {
      const nu = window.dash_clientside.no_update;
      if (!config) { return [nu, nu, nu, nu, nu, nu, nu, nu, nu, nu]; }
      const replay = config.replay_ms;
      const tx = config.texts;
      const shell = window.floorlinkShell;
      const fmt = new Intl.DateTimeFormat(config.lang === "en" ? "en-GB" : "zh-CN", {
        timeZone: config.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
      });
      const now = Date.now();
      const shown = new Date(replay || now);
      const day = new Intl.DateTimeFormat(config.lang === "en" ? "en-GB" : "zh-CN", {
        timeZone: config.tz, weekday: "short", month: "short", day: "numeric",
      }).format(shown);
      // A replayed instant's date is in the header's replay label, beside the clock.
      const clock = replay ? fmt.format(shown)
        : [{type: "Span", namespace: "dash_html_components",
            props: {className: "wall-date", children: day}}, fmt.format(shown)];
      shell.build = config.build_id || "";
      shell.kiosk = config.kiosk ? "1" : "0";
      status = status || {};
      if (status.build_id && status.build_id !== config.build_id) {
        window.location.reload();
      }
      if (status.server_ms && status.server_ms !== shell.serverMs) {
        shell.serverMs = status.server_ms;
        shell.answeredAt = now;
      }
      // Only a wall page refreshes; a desk page (the 404) has no freshness to report.
      const onWall = document.querySelector(".wall-page") !== null;
      shell.wallSince = onWall ? shell.wallSince || now : 0;
      const lastGood = onWall && status.last_good_ms;
      const updated = lastGood && !replay ? tx.updated + " " + fmt.format(new Date(lastGood)) : "";
      const late = 2 * config.refresh_ms + 2000;
      const heard = Math.max(shell.answeredAt, shell.wallSince);
      const silent = onWall && now - heard > late;
      const state = onWall ? status.state : "";
      let what = "";
      if (silent) {
        what = shell.serverErrorAt > heard ? tx.server_error : tx.server_unreachable;
      } else if (state === "db_down") {
        what = tx.db_unreachable;
      } else if (state === "error") {
        what = tx.server_error;
      } else if (lastGood && floorlinkServerNow(now) - lastGood > late + config.refresh_ms) {
        what = tx.stale;    // answers come, but with old data (a clock or cache problem)
      }
      let banner = "", bannerClass = "stale-banner", dot = onWall ? "status-dot" : "status-dot off";
      if (what) {
        const since = lastGood ? " · " + tx.stale_detail + " " + fmt.format(new Date(lastGood)) : "";
        banner = "⚠ " + what + since + " · " + tx.retrying;
        bannerClass = "stale-banner show";
        dot = "status-dot stale";
      }
      const errors = onWall && status.data_errors;
      let showing = "", path = nu;
      if (config.rotate && config.rotate.length) {
        const slot = Math.floor(now / 1000 / config.every_s);
        const i = slot % config.rotate.length;
        const target = config.rotate[i];
        const left = config.every_s - Math.floor(now / 1000) % config.every_s;
        showing = tx.now_showing + ": " + target.label + " (" + (i + 1) + "/" +
                  config.rotate.length + ") · " + left + "s";
        if (target.path !== pathname) { path = target.path; }
      }
      const quiet = onWall ? status.quiet || null : null;
      const quietKey = JSON.stringify(quiet) + (path === nu ? pathname : path);
      let quietShown = nu;
      if (quietKey !== shell.quietShown) {
        shell.quietShown = quietKey;
        quietShown = floorlinkQuiet(quiet, path === nu ? pathname : path);
      }
      return [clock, updated, banner, bannerClass, dot, showing, path,
              errors ? errors.text : "", errors ? errors.title : "", quietShown];
    },

    /* Fire the next refresh just after the server's next snapshot boundary (snapshots are
       taken every refresh_ms on the server's clock), so what was written before a boundary
       is on screen right after it. Each screen waits its own 0.1-0.5 s past the boundary,
       drawn once, so two hundred screens do not all ask in the same millisecond, and the
       screen still has half a second to ask, draw and show within a second of the boundary. */
    alignRefresh: function (n, config) {
      if (!config) { return window.dash_clientside.no_update; }
      if (window.floorlinkJitterMs === undefined) {
        window.floorlinkJitterMs = 100 + Math.floor(Math.random() * 400);
      }
      const period = config.refresh_ms;
      return period - (floorlinkServerNow(Date.now()) % period) + window.floorlinkJitterMs;
    },

    /* The issue board, redrawn every second: countdowns from absolute deadlines, in the
       order of urgency (docs/wall.md), paged instead of scrolled. An overdue row pulses
       until somebody acknowledges it (the andon's call), then stays steady red. A screen replaying an instant counts
       down to that instant, which does not move; only its pages turn. Every open issue is
       ordered, but only the rows of the page shown are built, and drawn only when they
       changed, so a board of thousands costs a page's worth of components at most a second.
       Off kiosk, an issue's number opens its trace. */
    board: function (n, data, config) {
      const nu = window.dash_clientside.no_update;
      if (!data) { return [nu, nu]; }
      if (data.state === "failed") { return [[floorlinkDiv("panel-failed", data.message)], ""]; }
      const tx = data.texts;
      const replay = config && config.replay_ms;
      const now = replay || Date.now();
      const rows = data.rows.map((r) => floorlinkUrgency(r, now)).sort(floorlinkByUrgency);
      // On a screen asked to (?sound=1), an issue that turns overdue sounds the andon's tone.
      floorlinkSoundOnOverdue(rows, config);
      if (!rows.length) {
        return [[data.state === "empty" ? floorlinkDiv("empty", tx.no_data)
                 : data.state === "quiet" ? floorlinkDiv("empty", tx.no_open_issues)
                 : floorlinkDiv("calm", tx.all_clear)], ""];
      }
      const box = floorlinkOutputBox();
      const columns = ((box && box.dataset.columns) || "").split(" ").filter(Boolean);
      const page = floorlinkPage(box, rows, data.page_s, Date.now());
      const trace = floorlinkTraceQuery(config);
      const shown = page.rows.map((u) => {
        const r = floorlinkBoardRow(u, now, tx, !replay, trace);
        return floorlinkComponent("Div", {
          key: r.id, className: r.cls,
          children: columns[0] === "cards" ? floorlinkCard(r.cells, tx) : columns.map((c) => r.cells[c])});
      });
      const aside = [];
      if (page.rows.some((u) => u.row.ping_pong)) {
        aside.push(floorlinkSpan(tx.ping_pong_mark, "legend", tx.ping_pong_title));
      }
      if (page.pages > 1) {
        aside.push(floorlinkSpan(floorlinkFill(tx.board_count, {n: rows.length.toLocaleString("en-US")}),
                                 "board-count"));
        aside.push(floorlinkSpan(floorlinkFill(tx.page_of, {page: page.page + 1, pages: page.pages})));
      }
      // A second in which nothing on screen changed (a replayed instant between two page
      // turns) sends nothing to draw.
      const drawn = JSON.stringify([shown, aside]);
      if (box && box.floorlinkDrawn === drawn) { return [nu, nu]; }
      if (box) { box.floorlinkDrawn = drawn; }
      return [shown, aside];
    },

    /* A list drawn in Python (the scoreboard, material alerts, stagnant lots, shortages),
       laid out here: as many whole rows as the box holds, the rest on further pages or
       announced as "+N more", rows the snapshot did not send announced too. */
    rows: function (n, data) {
      const nu = window.dash_clientside.no_update;
      if (!data) { return [nu, nu]; }
      if (data.state === "failed") { return [[floorlinkDiv("panel-failed", data.message)], ""]; }
      if (!data.rows.length) { return [[data.empty], ""]; }
      const box = floorlinkOutputBox();
      const page = floorlinkPage(box, data.rows, data.page_s, Date.now());
      if (box && box.floorlinkShown === data && box.floorlinkPage === page.page + "/" + page.per) {
        return [nu, nu];
      }
      if (box) { box.floorlinkShown = data; box.floorlinkPage = page.page + "/" + page.per; }
      const tx = data.texts;
      const aside = [];
      if (data.page_s && page.pages > 1) {
        aside.push(floorlinkFill(tx.page_of, {page: page.page + 1, pages: page.pages}));
      }
      const left = data.page_s ? data.total - data.rows.length : data.total - page.rows.length;
      if (left > 0) { aside.push(floorlinkFill(tx.more, {n: left.toLocaleString("en-US")})); }
      return [page.rows, aside.map((text) => floorlinkSpan(text))];
    },

    /* A figure built in Python for a 1080-pixel-high screen (data/figures.py), with its
       fonts and margins scaled to this screen's height; nothing else changes here. */
    scaleFigure: function (figure) {
      if (!figure) { return window.dash_clientside.no_update; }
      if (figure.state === "failed") {
        figure = {data: [], layout: {xaxis: {visible: false}, yaxis: {visible: false},
                                     paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
                                     annotations: [{text: figure.message, showarrow: false,
                                                    font: {size: 28, color: "#ff4d4f"}}]}};
      }
      const k = window.innerHeight / 1080;
      const scale = (node) => {
        if (Array.isArray(node)) { return node.map(scale); }
        if (!node || typeof node !== "object") { return node; }
        const out = {};
        for (const [name, value] of Object.entries(node)) {
          if (name === "margin") {
            out[name] = Object.fromEntries(Object.entries(value).map(
              ([side, px]) => [side, typeof px === "number" ? px * k : px]));
          } else if (/font$/i.test(name) && value && typeof value.size === "number") {
            out[name] = Object.assign(scale(value), {size: value.size * k});
          } else {
            out[name] = scale(value);
          }
        }
        return out;
      };
      return {data: scale(figure.data), layout: scale(figure.layout)};
    },

    /* A tile's slot pulses a few times (CSS) when the tile's level got worse since this
       screen's last refresh; the first figure after the page opens is not a change. */
    tileAlarm: function (tile, id) {
      const classes = ((tile && tile.props && tile.props.className) || "").split(" ");
      const level = ["bad", "warn", "ok"].find((name) => classes.includes(name));
      const rank = level ? {ok: 0, warn: 1, bad: 2}[level] : -1;
      const seen = window.floorlinkTileRanks = window.floorlinkTileRanks || {};
      const before = seen[id.tile];
      seen[id.tile] = rank;
      return before !== undefined && before >= 0 && rank > before ? "tile-slot worse-" + level
                                                                   : "tile-slot";
    },
  },
});

/* ---- helpers of the panels' callbacks ------------------------------------------------ */

function floorlinkComponent(type, props) {
  return {type: type, namespace: "dash_html_components", props: props};
}

function floorlinkSpan(text, className, title) {
  const props = {children: text, className: className || ""};
  if (title) { props.title = title; }
  return floorlinkComponent("Span", props);
}

function floorlinkDiv(className, text) {
  return floorlinkComponent("Div", {className: className, children: text});
}

/* The element the callback being run draws into (its first output). */
function floorlinkOutputBox() {
  return document.getElementById(window.dash_clientside.callback_context.outputs_list[0].id);
}

/* "第 {page}/{pages} 页" with its values filled in. */
function floorlinkFill(template, values) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? values[name] : whole));
}

/* A duration as the board writes it in both languages, never like a time of day:
   1天8时 / 1 d 8 h, 2时10分 / 2 h 10 min, and seconds only below an hour: 9分34秒 / 9 min 34 s. */
function floorlinkDuration(ms, tx) {
  const total = Math.max(0, Math.floor(Math.abs(ms) / 1000));
  const d = Math.floor(total / 86400), h = Math.floor((total % 86400) / 3600);
  const m = Math.floor((total % 3600) / 60), s = total % 60;
  if (d) { return floorlinkFill(tx.duration_dh, {d: d.toLocaleString("en-US"), h: h}); }
  if (h) { return floorlinkFill(tx.duration_hm, {h: h, m: m}); }
  return floorlinkFill(tx.duration_ms, {m: m, s: s});
}

/* What a board row sorts by at `now` (docs/wall.md), with the row it stands for: cheap
   enough to take for every open issue each second. */
function floorlinkUrgency(r, now) {
  const left = (r.acknowledged_ms !== null ? r.resolve_due_ms : r.ack_due_ms) - now;
  const severity = /^P(\d)$/.exec(r.severity || "");
  return {id: r.id, row: r, left: left, raised: r.raised_ms,
          state: left < 0 ? 0 : left < 5 * 60 * 1000 ? 1 : 2, severity: severity ? Number(severity[1]) : 9};
}

/* The query an issue's trace is opened with from the board: the screen's language and the
   instant it replays; null on a kiosk screen, whose rows open nothing. */
function floorlinkTraceQuery(config) {
  if (!config || !config.links) { return null; }
  const params = new URLSearchParams({lang: config.lang});
  if (config.at) { params.set("at", config.at); }
  return params.toString();
}

/* One board row at `now` from its urgency (floorlinkUrgency): its cells by column.
   `pulse`: whether an overdue row nobody has acknowledged pulses (not on a replayed
   instant, which stands still). `trace`: the query of the link from its number to its trace
   (/issue/<id>), or null for no link. The id is the link's child, text whatever it holds. */
function floorlinkBoardRow(u, now, tx, pulse, trace) {
  const r = u.row, left = u.left;
  const acked = r.acknowledged_ms !== null;
  const overdue = u.state === 0;
  const soon = u.state === 1;
  const word = overdue ? tx.overdue_by : acked ? tx.to_resolve : tx.to_ack;
  const who = r.contact || r.owner;
  const number = trace === null || trace === undefined ? r.id
    : floorlinkComponent("A", {href: "/issue/" + encodeURIComponent(r.id) + "?" + trace,
                               className: "trace-link", children: r.id});
  return {
    id: r.id,
    cls: "row" + (overdue ? " overdue" + (pulse && !acked ? " calling" : "") : soon ? " due-soon" : ""),
    cells: {
      severity: floorlinkSpan(r.severity, "c-severity sev sev-" + r.severity),
      id: floorlinkSpan(number, "c-id"),
      type: floorlinkSpan(r.type, "c-type"),
      title: floorlinkSpan(r.title, "c-title"),
      location: floorlinkSpan(r.location, "c-location"),
      contact: floorlinkSpan(r.ping_pong ? [floorlinkSpan("⇄ ", "pp", tx.ping_pong_title), who] : who,
                             "c-contact"),
      age: floorlinkSpan(floorlinkDuration(now - r.raised_ms, tx), "c-age"),
      countdown: floorlinkSpan(word + " " + floorlinkDuration(left, tx), "c-countdown"),
    },
  };
}

/* The no-new-data notice: when the newest record is from, and a link that replays this
   page, scope kept, at that instant ("" when there is new data). */
function floorlinkQuiet(quiet, pathname) {
  if (!quiet) { return ""; }
  const params = new URLSearchParams(window.location.search);
  params.set("at", quiet.at);
  return [quiet.text + " · " + quiet.hint + " ",
          floorlinkComponent("A", {href: pathname + "?" + params.toString(), children: "?at=" + quiet.at})];
}

/* A board row on two lines: what, whom to call and how long it has left; where, its
   number and how long it has waited. The title gives way first, then the number. */
function floorlinkCard(cells, tx) {
  const line = (className, children) => floorlinkComponent("Div", {className: className, children: children});
  return [
    cells.severity,
    line("c-main", [line("line", [cells.type, cells.title,
                                  floorlinkSpan([tx.call + " ", cells.contact], "c-call")]),
                    line("line", [cells.location, cells.id])]),
    line("c-times", [cells.countdown, floorlinkSpan([tx.col_age + " ", cells.age], "c-waited")]),
  ];
}

/* By urgency: overdue, then due within 5 minutes, then the rest; within each, P1 first;
   then the most overdue / the least time left; then the earliest raised; then the id. */
function floorlinkByUrgency(a, b) {
  return (a.state - b.state) || (a.severity - b.severity) || (a.left - b.left) ||
         (a.raised - b.raised) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/* As many whole rows as `box` holds at the row height its CSS gives (grid-auto-rows): its
   max-height when it grows with its rows, else its height, less the lines past the first
   of the text it shares its room with (data-shares-with). A box whose rows take the height
   of their text (a phone) holds the number its CSS names in --page-rows. Page `page` of
   `pages`, turning every `pageS` seconds (0: always the first). */
function floorlinkPage(box, rows, pageS, now) {
  const style = box ? getComputedStyle(box) : null;
  const rowPx = style ? parseFloat(style.gridAutoRows) : NaN;
  const fixed = style ? parseInt(style.getPropertyValue("--page-rows"), 10) : NaN;
  const shared = box && box.dataset.sharesWith ? document.getElementById(box.dataset.sharesWith) : null;
  const extra = shared ? Math.max(0, shared.offsetHeight - parseFloat(getComputedStyle(shared).lineHeight)) : 0;
  const room = style ? (parseFloat(style.maxHeight) || box.clientHeight) - extra : NaN;
  const per = fixed > 0 ? fixed
    : rowPx > 0 && room > 0 ? Math.max(1, Math.floor((room + 1) / rowPx)) : rows.length;
  const pages = Math.max(1, Math.ceil(rows.length / per));
  const page = pageS ? Math.floor(now / 1000 / pageS) % pages : 0;
  return {rows: rows.slice(page * per, page * per + per), page: page, pages: pages, per: per};
}

/* ---- sound: a tone when an issue on the board turns overdue (?sound=1) ----------------- */

/* The tones this page has played (tests read it), and what the sound keeps between two
   drawings of the board: the Web Audio context, and each deadline on the board at the last
   drawing with whether it was past (null before the first drawing after the page loads). */
window.floorlinkTones = 0;
window.floorlinkSound = {context: null, seen: null};

/* Compare the board with its last drawing: a deadline that was ahead and is now past (an
   issue's response limit, later its resolution limit) sounds one tone, however many turned
   together; one already past at the first drawing, or that stays past, sounds none. Nothing
   on a replayed instant, which stands still, or on a screen not asked to sound. */
function floorlinkSoundOnOverdue(urgencies, config) {
  if (!config || !config.sound || config.replay_ms) { return; }
  const sound = window.floorlinkSound;
  const context = floorlinkSoundContext(config.texts);
  const seen = {};
  let turned = false;
  for (const u of urgencies) {
    const key = u.row.id + (u.row.acknowledged_ms !== null ? " resolve" : " respond");
    seen[key] = u.state === 0;
    turned = turned || (seen[key] && sound.seen !== null && sound.seen[key] === false);
  }
  sound.seen = seen;
  if (turned && context && context.state === "running") {
    floorlinkTone(context);
    window.floorlinkTones += 1;
  }
}

/* The page's audio context, made at the board's first drawing. A browser keeps it suspended
   until a person touches the page (its autoplay rules) unless started with
   --autoplay-policy=no-user-gesture-required (docs/wall.md): then the header asks for a tap,
   and any click, touch or key resumes it. None in a browser without Web Audio. */
function floorlinkSoundContext(tx) {
  const sound = window.floorlinkSound;
  if (sound.context) {
    floorlinkSoundNotice(sound.context.state !== "running", tx);
    return sound.context;
  }
  const Context = window.AudioContext || window.webkitAudioContext;
  if (!Context) { return null; }
  const context = sound.context = new Context();
  const wake = function () {
    context.resume().catch(function () {});
  };
  for (const name of ["click", "touchend", "keydown"]) {
    document.addEventListener(name, wake, true);
  }
  context.onstatechange = function () {
    floorlinkSoundNotice(context.state !== "running", tx);
  };
  context.resume().catch(function () {});
  return context;
}

/* The header's "tap to enable sound", shown while the audio context is suspended. */
function floorlinkSoundNotice(show, tx) {
  let notice = document.getElementById("wall-sound");
  if (!show) {
    if (notice) { notice.remove(); }
    return;
  }
  const header = document.querySelector(".wall-header");
  if (!header) { return; }
  if (!notice) {
    notice = document.createElement("button");
    notice.id = "wall-sound";
    notice.type = "button";
    notice.className = "wall-sound";
    header.insertBefore(notice, header.querySelector(".wall-updated"));
  }
  notice.textContent = (tx && tx.sound_enable) || "🔇";
}

/* The andon's call: two short beeps in half a second, faded in and out so they do not click. */
function floorlinkTone(context) {
  const start = context.currentTime + 0.02;
  const tone = context.createOscillator();
  const gain = context.createGain();
  tone.type = "square";
  tone.frequency.value = 880;
  gain.gain.setValueAtTime(0, start);
  for (const beep of [0, 0.3]) {
    gain.gain.setValueAtTime(0, start + beep);
    gain.gain.linearRampToValueAtTime(0.2, start + beep + 0.01);
    gain.gain.setValueAtTime(0.2, start + beep + 0.19);
    gain.gain.linearRampToValueAtTime(0, start + beep + 0.2);
  }
  tone.connect(gain).connect(context.destination);
  tone.start(start);
  tone.stop(start + 0.5);
}
