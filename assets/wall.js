/* Clientside callbacks of the wall: everything that changes every second runs here,
   in the browser, so a countdown never costs a server round trip. */
window.dash_clientside = Object.assign({}, window.dash_clientside, {
  floorlink: {
    /* Clock, freshness, stale banner, rotation and reload-after-deploy, once a second. */
    shellTick: function (n, status, config, pathname) {
      const nu = window.dash_clientside.no_update;
      if (!config) { return [nu, nu, nu, nu, nu, nu, nu]; }
      const tx = config.texts;
      const fmt = new Intl.DateTimeFormat(config.lang === "en" ? "en-GB" : "zh-CN", {
        timeZone: config.tz, hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false,
      });
      const now = Date.now();
      const day = new Intl.DateTimeFormat(config.lang === "en" ? "en-GB" : "zh-CN", {
        timeZone: config.tz, weekday: "short", month: "short", day: "numeric",
      }).format(new Date(now));
      const clock = [{type: "Span", namespace: "dash_html_components",
                      props: {className: "wall-date", children: day}}, fmt.format(new Date(now))];
      status = status || {};
      if (status.build_id && status.build_id !== config.build_id) {
        window.location.reload();
      }
      const lastGood = status.last_good_ms;
      const updated = lastGood ? tx.updated + " " + fmt.format(new Date(lastGood)) : "";
      let banner = "", bannerClass = "stale-banner", dot = "status-dot";
      const tooOld = lastGood && now - lastGood > 2 * config.refresh_ms + 2000;
      if (status.state === "db_down" || tooOld || (!lastGood && n > 2 * config.refresh_ms / 1000 + 2)) {
        const what = status.state === "db_down" ? tx.db_unreachable
                   : (status.state === "ok" || !status.state) && tooOld ? tx.stale : tx.server_unreachable;
        const since = lastGood ? " · " + tx.stale_detail + " " + fmt.format(new Date(lastGood)) : "";
        banner = "⚠ " + what + since + " · " + tx.retrying;
        bannerClass = "stale-banner show";
        dot = "status-dot stale";
      }
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
      return [clock, updated, banner, bannerClass, dot, showing, path];
    },

    /* Fire the next refresh just after the server's next snapshot boundary (snapshots are
       taken every refresh_ms on the server's clock), so what was written before a boundary
       is on screen right after it. Each screen waits its own 0.2-1.0 s past the boundary,
       drawn once, so two hundred screens do not all ask in the same millisecond. */
    alignRefresh: function (n, status, config) {
      if (!config) { return window.dash_clientside.no_update; }
      if (window.floorlinkJitterMs === undefined) {
        window.floorlinkJitterMs = 200 + Math.floor(Math.random() * 800);
      }
      const period = config.refresh_ms;
      const offset = status && status.server_ms ? status.server_ms - Date.now() : 0;
      const serverNow = Date.now() + offset;
      return period - (serverNow % period) + window.floorlinkJitterMs;
    },

    /* The issue board: countdowns from absolute deadlines, and paging instead of scrolling. */
    board: function (n, data, config) {
      if (!data || !config) { return window.dash_clientside.no_update; }
      const tx = config.texts;
      const now = Date.now();
      const span = (text, cls) => ({type: "Span", namespace: "dash_html_components",
                                    props: {children: text, className: cls || ""}});
      const duration = (ms) => {
        const s = Math.max(0, Math.floor(Math.abs(ms) / 1000));
        const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
        if (h >= 24) { return Math.floor(h / 24) + tx.days_short + (h % 24) + tx.hours_short; }
        const mm = String(m).padStart(2, "0"), ss = String(sec).padStart(2, "0");
        return h > 0 ? h + ":" + mm + ":" + ss : mm + ":" + ss;
      };
      // How long an issue has waited: to the minute, so the column stays short and calm.
      const age = (ms) => {
        const minutes = Math.max(0, Math.floor(ms / 60000));
        const h = Math.floor(minutes / 60), m = minutes % 60;
        if (h >= 24) { return Math.floor(h / 24) + tx.days_short + (h % 24) + tx.hours_short; }
        return h > 0 ? h + tx.hours_short + m + tx.minutes_compact : m + tx.minutes_compact;
      };
      const rows = data.rows.map((r) => {
        const acked = r.acknowledged_ms !== null;
        const due = acked ? r.resolve_due_ms : r.ack_due_ms;
        const left = due - now;
        const overdue = left < 0;
        const label = overdue ? tx.overdue_by + " " + duration(left)
                              : (acked ? tx.to_resolve : tx.to_ack) + " " + duration(left);
        const soon = !overdue && left < 5 * 60 * 1000;
        return {overdue: overdue, left: left, cells: [
          span(r.severity, "sev sev-" + r.severity), span(r.type), span(r.title),
          span(r.location), span(r.owner), span(age(now - r.raised_ms), "age"),
          span(label, "countdown")],
          cls: "board-row" + (overdue ? " overdue" : soon ? " due-soon" : "")};
      });
      rows.sort((a, b) => (b.overdue - a.overdue) || (a.left - b.left));
      if (!rows.length) {
        const calm = data.state === "empty" ? ["no_data", "empty"] : ["all_clear", "calm"];
        return [[{type: "Div", namespace: "dash_html_components",
                  props: {className: calm[1], children: tx[calm[0]]}}], ""];
      }
      // As many rows per page as the board's height holds, at any screen size.
      const box = document.getElementById(
        window.dash_clientside.callback_context.outputs_list[0].id);
      const rowPx = 4.6 * window.innerHeight / 100;
      const per = Math.max(1, Math.floor((box ? box.clientHeight : 9 * rowPx) / rowPx));
      const pages = Math.max(1, Math.ceil(rows.length / per));
      const page = Math.floor(now / 1000 / data.page_s) % pages;
      const shown = rows.slice(page * per, page * per + per).map((r) => ({
        type: "Div", namespace: "dash_html_components",
        props: {className: r.cls, children: r.cells}}));
      const pager = pages > 1 ? (page + 1) + " / " + pages + " " + tx.page_of : "";
      return [shown, pager];
    },

    /* Horizontal stacked bars (lots per stage), text sized to the screen. */
    stackedBars: function (bars, config) {
      if (!bars || !config) { return window.dash_clientside.no_update; }
      const px = Math.max(14, Math.round(window.innerHeight * 0.022));
      return {
        data: bars.series.map((s) => ({type: "bar", orientation: "h", name: s.name, y: bars.labels,
                                       x: s.values, marker: {color: s.color}, text: s.values.map(
                                         (v) => v ? String(v) : ""), textposition: "inside",
                                       insidetextfont: {size: px}})),
        layout: {
          barmode: "stack", paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
          font: {color: "#9fb2cf", size: px, family: "Noto Sans CJK SC, Microsoft YaHei, sans-serif"},
          margin: {l: px, r: px, t: px * 2.5, b: px * 2},
          legend: {orientation: "h", y: 1.02, yanchor: "bottom", x: 0},
          xaxis: {gridcolor: "#1d2b47", zeroline: false},
          yaxis: {autorange: "reversed", automargin: true},
        },
      };
    },

    /* The trend figure, built here so its text scales with the screen. */
    trendFigure: function (trend, config) {
      if (!trend || !config) { return window.dash_clientside.no_update; }
      const px = Math.max(14, Math.round(window.innerHeight * 0.022));
      return {
        data: [
          {type: "bar", x: trend.days, y: trend.median_min, marker: {color: trend.colors},
           hovertemplate: "%{x}: %{y:.0f}<extra></extra>"},
          {type: "scatter", mode: "lines", x: trend.days,
           y: trend.days.map(() => trend.goal_min), line: {color: "#22c55e", dash: "dash", width: 3},
           hoverinfo: "skip"},
        ],
        layout: {
          paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", showlegend: false,
          font: {color: "#9fb2cf", size: px, family: "Noto Sans CJK SC, Microsoft YaHei, sans-serif"},
          margin: {l: px * 3.2, r: px, t: px * 0.5, b: px * 2.2},
          xaxis: {type: "category", gridcolor: "#1d2b47", tickangle: 0, nticks: 8},
          yaxis: {gridcolor: "#1d2b47", zeroline: false, rangemode: "tozero"},
        },
      };
    },
  },
});
