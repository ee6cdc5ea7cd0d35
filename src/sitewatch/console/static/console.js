/* sitewatch console: the little JavaScript the pages need (no build step).
   - live parts poll with htmx; a hidden tab does not poll (bounded load);
   - the device page draws its charts with uPlot from /devices/<id>/series.json;
   - the login page takes a token from the address's fragment (the demo's link), never sent to a server. */
(function () {
  "use strict";

  document.addEventListener("htmx:beforeRequest", function (evt) {
    var trigger = evt.detail && evt.detail.requestConfig && evt.detail.requestConfig.triggeringEvent;
    if (document.hidden && (!trigger || trigger.type !== "submit")) { evt.preventDefault(); }
  });

  function loginFromFragment() {
    var form = document.getElementById("login-form");
    if (!form || location.hash.length < 2) { return; }
    var token = decodeURIComponent(location.hash.slice(1));
    history.replaceState(null, "", location.pathname + location.search);
    form.querySelector("input[name=token]").value = token;
    form.submit();
  }

  function chart(container, ts, s, tz) {
    var box = document.createElement("div");
    box.className = "chart";
    var title = document.createElement("h3");
    title.textContent = s.label + (s.unit ? " (" + s.unit + ")" : "");
    box.appendChild(title);
    container.appendChild(box);
    var width = Math.max(300, box.clientWidth - 16);
    new uPlot({
      width: width, height: 180, legend: { show: false },
      scales: { x: { time: true } },
      tzDate: function (t) { return tz ? uPlot.tzDate(new Date(t * 1e3), tz) : new Date(t * 1e3); },
      series: [{}, { label: s.label, stroke: "#1d5fa8", width: 1.5, spanGaps: false }],
      axes: [{}, { size: 80 }]
    }, [ts, s.values], box);
  }

  function charts() {
    var container = document.getElementById("charts");
    if (!container || typeof uPlot === "undefined") { return; }
    fetch(container.dataset.src, { credentials: "same-origin", headers: { "Accept": "application/json" } })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(function (data) {
        if (!data.series.length) {
          var p = document.createElement("p"); p.className = "muted"; p.textContent = container.dataset.empty;
          container.appendChild(p); return;
        }
        data.series.forEach(function (s) { chart(container, data.ts, s, container.dataset.tz); });
        container.dataset.ready = String(data.series.length);
      })
      .catch(function () {
        var p = document.createElement("p"); p.className = "error"; p.textContent = container.dataset.failed;
        container.appendChild(p);
      });
  }

  document.addEventListener("DOMContentLoaded", function () { loginFromFragment(); charts(); });
})();
