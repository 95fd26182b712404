// The dashboard's only script: draws the chart, refreshes the current-visitors count and
// makes the period picker submit itself. Every page works without it (the chart has a
// table, the picker an Apply button). Data arrives as JSON in the page, never as code.
(function () {
  "use strict";

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function duration(s) {
    s = Math.round(s);
    if (s < 60) return s + "s";
    var m = Math.floor(s / 60);
    return m >= 60 ? Math.floor(m / 60) + "h " + (m % 60) + "m" : m + "m " + (s % 60) + "s";
  }

  function format(metric, v) {
    if (v == null) return "-";
    if (metric === "visit_duration") return duration(v);
    if (metric === "bounce_rate") return v + "%";
    return String(Math.round(v * 100) / 100);
  }

  function label(text, interval) {
    // "2026-11-28" or "2026-11-28 13:00:00": the part that differs from point to point
    if (interval === "hour") return text.slice(11, 16);
    if (interval === "month") return text.slice(0, 7);
    return text.slice(5, 10);
  }

  function drawChart() {
    var holder = document.getElementById("chart");
    var source = document.getElementById("chart-data");
    if (!holder || !source || typeof uPlot === "undefined") return;
    var data = JSON.parse(source.textContent);
    var xs = data.labels.map(function (_, i) { return i; });
    var series = [{ value: function (u, i) { return i == null ? "" : data.labels[i] || ""; } }, {
      label: data.label,
      stroke: css("--accent"),
      fill: css("--accent-soft"),
      width: 2,
      value: function (u, v) { return format(data.metric, v); }
    }];
    var values = [xs, data.values];
    if (data.previous) {
      series.push({ label: "Previous period", stroke: css("--muted"), dash: [6, 4], width: 1.5,
                    value: function (u, v) { return format(data.metric, v); } });
      values.push(data.previous);
    }
    var grid = { stroke: css("--grid"), width: 1 };
    var axis = { stroke: css("--muted"), grid: grid, ticks: grid };
    var plot;
    function options() {
      return {
        width: holder.clientWidth, height: 260, series: series,
        scales: { x: { time: false } },
        axes: [Object.assign({}, axis, {
          values: function (u, ticks) {
            return ticks.map(function (t) {
              return data.labels[t] != null ? label(data.labels[t], data.interval) : "";
            });
          }
        }), Object.assign({}, axis, {
          values: function (u, ticks) {
            return ticks.map(function (t) { return format(data.metric, t); });
          }
        })],
        legend: { live: true }
      };
    }
    holder.textContent = "";
    plot = new uPlot(options(), values, holder);
    if (window.performance && performance.mark) performance.mark("ferrite-chart");
    var last = holder.clientWidth;
    window.addEventListener("resize", function () {
      if (holder.clientWidth !== last) {
        last = holder.clientWidth;
        plot.setSize({ width: last, height: 260 });
      }
    });
    var dark = window.matchMedia("(prefers-color-scheme: dark)");
    if (dark.addEventListener) {
      dark.addEventListener("change", function () {
        plot.destroy();
        series[1].stroke = css("--accent");
        series[1].fill = css("--accent-soft");
        if (series[2]) series[2].stroke = css("--muted");
        grid.stroke = css("--grid");
        axis.stroke = css("--muted");
        plot = new uPlot(options(), values, holder);
      });
    }
  }

  function realtime() {
    var box = document.querySelector("[data-realtime-url]");
    if (!box) return;
    var number = box.querySelector(".value");
    var every = Math.max(1, Number(box.getAttribute("data-refresh")) || 30) * 1000;
    function refresh() {
      fetch(box.getAttribute("data-realtime-url"), {
        credentials: "same-origin", headers: { Accept: "application/json" }
      }).then(function (r) { return r.ok ? r.json() : null; }).then(function (body) {
        if (body && typeof body.visitors === "number") {
          box.setAttribute("data-value", String(body.visitors));
          number.textContent = String(body.visitors);
        }
      }).catch(function () { /* offline for a moment: try again at the next tick */ });
    }
    setInterval(function () { if (!document.hidden) refresh(); }, every);
  }

  function periodPicker() {
    var form = document.getElementById("period-form");
    if (!form) return;
    var select = form.querySelector("select[name=period]");
    var custom = form.querySelector(".custom-range");
    function sync() { custom.hidden = select.value !== "custom"; }
    sync();
    select.addEventListener("change", function () {
      sync();
      if (select.value !== "custom") form.submit();
    });
    var compare = form.querySelector("select[name=compare]");
    compare.addEventListener("change", function () { form.submit(); });
  }

  drawChart();
  realtime();
  periodPicker();
})();
