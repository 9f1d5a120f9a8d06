/* horde's HTML report charts: line charts drawn as inline SVG from the embedded history, a point
   a second (chart_history, the web UI's points) or else Locust's rows, one every 5 s.
   No libraries and no network: the data is the JSON in <script id="report-data">. */
(function () {
  "use strict";

  var data = JSON.parse(document.getElementById("report-data").textContent);
  var perSecond = (data.chart_history || []).length > 0;
  var history = perSecond ? data.chart_history : data.history || [];
  // The response times' scale covers the last minute in full and older points up to this
  // quantile, so that one early spike does not flatten the rest of the run.
  var RECENT_MS = 60000, ROBUST_QUANTILE = 0.99;

  var W = 900, H = 250, LEFT = 58, RIGHT = 16, TOP = 10, BOTTOM = 26;
  var COLORS = ["var(--series-1)", "var(--series-2)", "var(--series-3)", "var(--series-4)"];

  function escapeText(s) {
    return String(s).replace(/[&<>"]/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c];
    });
  }

  // A step of 1, 2 or 5 times a power of ten that gives about `count` ticks up to `max`.
  function niceStep(max, count) {
    var raw = max / count;
    var power = Math.pow(10, Math.floor(Math.log10(raw)));
    var steps = [1, 2, 5, 10];
    for (var i = 0; i < steps.length; i++) {
      if (raw <= steps[i] * power) return steps[i] * power;
    }
    return 10 * power;
  }

  // Three significant digits, never finer than a microsecond (0.031 ms) nor coarser than a unit.
  function formatNumber(v) {
    if (v === null || v === undefined || isNaN(v)) return "-";
    if (Math.abs(v) >= 1000) return Math.round(v).toLocaleString();
    if (v === 0) return "0";
    var digits = Math.min(3, Math.max(0, 2 - Math.floor(Math.log10(Math.abs(v)))));
    return String(Number(v.toFixed(digits)));
  }

  function formatTime(ms) {
    var d = new Date(ms);
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getHours()) + ":" + two(d.getMinutes()) + ":" + two(d.getSeconds());
  }

  // Per-second points carry epoch seconds and values; Locust's rows [iso time, value] pairs. The
  // chart needs epoch ms and numbers; a null (no request in the window) is left out.
  function seriesFrom(key) {
    var points = [];
    history.forEach(function (row) {
      var cell = row[key];
      if (perSecond) {
        if (cell !== null && cell !== undefined) points.push([row.time * 1000, Number(cell)]);
        return;
      }
      if (!cell) return;
      var t = Date.parse(cell[0]);
      if (!isNaN(t)) points.push([t, Number(cell[1]) || 0]);
    });
    return points;
  }

  function scaleMax(all, robust) {
    var values = all.map(function (p) { return p[1]; });
    var max = Math.max.apply(null, values);
    if (!robust) return max;
    var t1 = Math.max.apply(null, all.map(function (p) { return p[0]; }));
    var recent = 0;
    all.forEach(function (p) { if (p[0] >= t1 - RECENT_MS && p[1] > recent) recent = p[1]; });
    var sorted = Float64Array.from(values).sort();
    return Math.max(recent, sorted[Math.min(sorted.length - 1, Math.floor(ROBUST_QUANTILE * sorted.length))]);
  }

  function percentileKeys() {
    var keys = {};
    history.forEach(function (row) {
      Object.keys(row).forEach(function (k) {
        if (k.indexOf("response_time_percentile_") === 0) keys[k] = true;
      });
    });
    return Object.keys(keys).sort(function (a, b) {
      return parseFloat(a.split("_").pop()) - parseFloat(b.split("_").pop());
    });
  }

  function percentileLabel(key) {
    var p = parseFloat(key.split("_").pop()) * 100;
    return (Math.round(p * 100) / 100) + "th percentile";
  }

  function drawChart(container, title, series, unit, robust) {
    var all = [];
    series.forEach(function (s) { s.points.forEach(function (p) { all.push(p); }); });
    var head = "<h3>" + escapeText(title) + "</h3>";
    if (!all.length) {
      container.innerHTML = head + '<p class="empty">No data was sampled during this run.</p>';
      return;
    }
    var t0 = Math.min.apply(null, all.map(function (p) { return p[0]; }));
    var t1 = Math.max.apply(null, all.map(function (p) { return p[0]; }));
    if (t1 === t0) { t0 -= 30000; t1 += 30000; }
    var maxY = scaleMax(all, robust);
    var step = niceStep(maxY > 0 ? maxY : 1, 4);
    var topY = Math.ceil((maxY > 0 ? maxY : 1) / step) * step;
    var plotW = W - LEFT - RIGHT, plotH = H - TOP - BOTTOM;

    function x(t) { return LEFT + (t - t0) / (t1 - t0) * plotW; }
    function y(v) { return TOP + plotH - v / topY * plotH; }

    var svg = '<svg viewBox="0 0 ' + W + " " + H + '" role="img" aria-label="' + escapeText(title) + '">';
    svg += '<g class="grid axis">';
    for (var v = 0; v <= topY + step / 2; v += step) {
      svg += '<line x1="' + LEFT + '" x2="' + (W - RIGHT) + '" y1="' + y(v) + '" y2="' + y(v) + '"></line>';
      svg += '<text x="' + (LEFT - 6) + '" y="' + (y(v) + 4) + '" text-anchor="end">' + formatNumber(v) + "</text>";
    }
    var ticks = 6;
    for (var i = 0; i <= ticks; i++) {
      var t = t0 + (t1 - t0) * i / ticks;
      var anchor = i === 0 ? "start" : (i === ticks ? "end" : "middle");
      svg += '<text x="' + x(t) + '" y="' + (H - 8) + '" text-anchor="' + anchor + '">' + formatTime(t) + "</text>";
    }
    svg += "</g>";
    var above = all.filter(function (p) { return p[1] > topY; });
    if (above.length) {
      var peak = Math.max.apply(null, above.map(function (p) { return p[1]; }));
      svg += '<text class="axis clipped" x="' + (W - RIGHT - 4) + '" y="' + (TOP + 12) + '" text-anchor="end">&#9650; ' +
        above.length + " off scale, up to " + formatNumber(peak) + (unit ? " " + unit : "") + "</text>";
    }
    series.forEach(function (s, n) {
      if (!s.points.length) return;
      var color = COLORS[n % COLORS.length];
      // Points off the scale are drawn on its top edge.
      var path = s.points.map(function (p) { return x(p[0]).toFixed(1) + "," + y(Math.min(p[1], topY)).toFixed(1); }).join(" ");
      svg += '<polyline fill="none" stroke-width="2" style="stroke:' + color + '" points="' + path + '"></polyline>';
      if (s.points.length <= 60) {
        s.points.forEach(function (p) {
          svg += '<circle r="2.5" cx="' + x(p[0]).toFixed(1) + '" cy="' + y(Math.min(p[1], topY)).toFixed(1) + '" style="fill:' + color + '"></circle>';
        });
      }
    });
    svg += '<line class="cursor" y1="' + TOP + '" y2="' + (TOP + plotH) + '" x1="-10" x2="-10"></line>';
    svg += '<rect class="hover" fill="transparent" x="' + LEFT + '" y="' + TOP + '" width="' + plotW + '" height="' + plotH + '"></rect>';
    svg += "</svg>";

    var legend = '<div class="legend">' + series.map(function (s, n) {
      return '<span><i style="background:' + COLORS[n % COLORS.length] + '"></i>' + escapeText(s.name) + "</span>";
    }).join("") + "</div>";
    container.innerHTML = head + legend + svg + '<div class="tip"></div>';

    // Hovering shows every series' value at the nearest sampled time.
    var svgEl = container.querySelector("svg");
    var tip = container.querySelector(".tip");
    var cursor = container.querySelector(".cursor");
    var times = [];
    series.forEach(function (s) { s.points.forEach(function (p) { if (times.indexOf(p[0]) < 0) times.push(p[0]); }); });
    times.sort(function (a, b) { return a - b; });
    svgEl.addEventListener("mousemove", function (ev) {
      var box = svgEl.getBoundingClientRect();
      var vx = (ev.clientX - box.left) / box.width * W;
      var t = t0 + (vx - LEFT) / plotW * (t1 - t0);
      var best = times[0];
      times.forEach(function (c) { if (Math.abs(c - t) < Math.abs(best - t)) best = c; });
      cursor.setAttribute("x1", x(best));
      cursor.setAttribute("x2", x(best));
      var lines = ["<b>" + formatTime(best) + "</b>"];
      series.forEach(function (s, n) {
        var hit = s.points.filter(function (p) { return p[0] === best; })[0];
        if (hit) {
          lines.push('<span style="color:' + COLORS[n % COLORS.length] + '">&#9632;</span> ' +
            escapeText(s.name) + ": " + formatNumber(hit[1]) + (unit ? " " + unit : ""));
        }
      });
      tip.innerHTML = lines.join("<br>");
      tip.style.display = "block";
      var px = (x(best) / W) * box.width + svgEl.offsetLeft;
      var left = px + 12;
      if (left + tip.offsetWidth > container.clientWidth) left = px - tip.offsetWidth - 12;
      tip.style.left = left + "px";
      tip.style.top = (svgEl.offsetTop + 8) + "px";
    });
    svgEl.addEventListener("mouseleave", function () {
      tip.style.display = "none";
      cursor.setAttribute("x1", -10);
      cursor.setAttribute("x2", -10);
    });
  }

  var charts = {
    "rps": function (el) {
      drawChart(el, "Total Requests per Second", [
        { name: "RPS", points: seriesFrom("current_rps") },
        { name: "Failures/s", points: seriesFrom("current_fail_per_sec") }
      ], "");
    },
    "response-times": function (el) {
      drawChart(el, "Response Times (ms)", percentileKeys().map(function (k) {
        return { name: percentileLabel(k), points: seriesFrom(k) };
      }), "ms", true);
    },
    "users": function (el) {
      drawChart(el, "Number of Users", [{ name: "Users", points: seriesFrom("user_count") }], "");
    }
  };

  Array.prototype.forEach.call(document.querySelectorAll("[data-chart]"), function (el) {
    var draw = charts[el.getAttribute("data-chart")];
    if (draw) draw(el);
  });
})();
