/* Model Health pages: each page fetches its JSON from ../health/api/… (same origin: the UI's _token
   cookie goes with it) and draws it with the plotly.js the reports app serves. No CDN, no framework. */
var ChurnHealth = (function () {
  "use strict";
  var body, base, main;
  var ROLE_COLOURS = { champion: "#2b6cb0", challenger: "#dd6b20" };
  var MONITORING_DAG = "churn_daily_monitoring", ROLLBACK_DAG = "churn_model_rollback";
  var METRIC_NAMES = { roc_auc: "ROC AUC", f1: "F1", precision: "Precision", recall: "Recall" };

  function esc(value) {
    return String(value === null || value === undefined ? "–" : value).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function num(value, digits) { return value === null || value === undefined ? "–" : Number(value).toFixed(digits || 3); }
  function sev(value) { return '<span class="sev-' + esc(value) + '">' + esc(value) + "</span>"; }
  function api(path, params) {
    var query = Object.keys(params || {}).filter(function (k) { return params[k]; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
    return fetch(base + "health/api/" + path + (query ? "?" + query : ""), { credentials: "same-origin" })
      .then(function (r) {
        if (!r.ok) { return r.text().then(function (t) { throw new Error(r.status + " " + t); }); }
        return r.json();
      });
  }
  function chart(id, traces, layout) {
    var el = document.getElementById(id);
    if (!window.Plotly) { el.innerHTML = '<p class="error">plotly.js did not load</p>'; return; }
    Plotly.react(el, traces, Object.assign({ margin: { t: 40, r: 20, b: 50, l: 60 }, hovermode: "closest" }, layout),
      { responsive: true, displaylogo: false });
  }
  function table(headers, rows) {
    return "<table><thead><tr>" + headers.map(function (h) { return "<th>" + esc(h) + "</th>"; }).join("") +
      "</tr></thead><tbody>" + (rows.length ? rows.map(function (r) { return "<tr>" + r.map(function (c) {
        return "<td>" + c + "</td>"; }).join("") + "</tr>"; }).join("") :
        '<tr><td colspan="' + headers.length + '" class="muted">none</td></tr>') + "</tbody></table>";
  }
  function card(title, html) { return '<div class="card"><h3>' + esc(title) + "</h3>" + html + "</div>"; }
  function fail(error) { main.innerHTML = '<p class="error">' + esc(error.message || error) + "</p>"; }

  // -- Actions: Airflow's own REST API, same origin (the UI's HttpOnly _token cookie authenticates it; Airflow
  // checks the user may trigger the DAG) --------------------------------------------------------------------
  function airflowApi(path, options) {
    return fetch(base + "../api/v2/" + path, Object.assign({ credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" } }, options || {}));
  }
  function detail(response) {
    return response.text().then(function (text) {
      var d = text;
      try { d = JSON.parse(text).detail; } catch (e) { /* not JSON: the text itself */ }
      if (typeof d !== "string") { d = JSON.stringify(d); }
      return String(d || response.statusText).replace(/\s+/g, " ").slice(0, 300);
    });
  }
  // Airflow's UI shows these pages in an iframe sandboxed without allow-top-navigation, so a target="_top" link
  // is refused there; the frame is same-origin, so the UI's router is told instead (pushState + popstate).
  function openInUi(ev) {
    if (window.top === window) { return; }  // the page on its own: the link works as it is
    try {
      var url = new URL(this.getAttribute("href"), window.location.href);
      window.top.history.pushState(null, "", url.pathname + url.search);
      window.top.dispatchEvent(new window.top.PopStateEvent("popstate", { state: null }));
      ev.preventDefault();
    } catch (e) { /* not reachable: leave it to the browser */ }
  }
  var WHY = { 401: "not logged in", 403: "your Airflow user may not trigger", 404: "no such DAG in Airflow:",
    409: "a run with this id already exists for" };
  function trigger(dagId, conf, note, out) {
    out.className = "action-result muted"; out.textContent = "triggering " + dagId + "…";
    return airflowApi("dags/" + encodeURIComponent(dagId) + "/dagRuns", { method: "POST",
      body: JSON.stringify({ logical_date: null, conf: conf, note: note }) }).then(function (r) {
      if (!r.ok) {
        return detail(r).then(function (d) {
          throw new Error("Triggering " + dagId + " failed: " + r.status + " " + (WHY[r.status] ? WHY[r.status] + " " + dagId + ": " : "") + d);
        });
      }
      return r.json().then(function (run) {
        return airflowApi("dags/" + encodeURIComponent(dagId)).then(function (d) { return d.ok ? d.json() : {}; })
          .catch(function () { return {}; }).then(function (dag) {
            var href = base + "../dags/" + encodeURIComponent(dagId) + "/runs/" + encodeURIComponent(run.dag_run_id);
            out.className = "action-result";
            out.innerHTML = "Started " + esc(dagId) + ' run <a target="_top" data-run-id="' + esc(run.dag_run_id) + '" href="' + esc(href) + '">' +
              esc(run.dag_run_id) + "</a> (" + esc(run.state) + ")" +
              (dag.is_paused ? ' <span class="sev-warn">the DAG is paused: the run waits until it is unpaused</span>' : "");
            out.querySelector("a").onclick = openInUi;
            return run;
          });
      });
    }).catch(function (error) { out.className = "action-result error"; out.textContent = error.message || String(error); });
  }

  // -- Overview ---------------------------------------------------------------------------------------
  // The story in one chart: the failure risk against its alarm threshold, the champion's AUC once labels
  // arrived, and the days that matter: drift, the risk alarm, the labels' confirmation, promotions, rollbacks.
  function storyChart(s) {
    var shapes = [], notes = [];
    function mark(ds, colour, text, dash) {
      if (!ds) { return; }
      shapes.push({ type: "line", xref: "x", yref: "paper", x0: ds, x1: ds, y0: 0, y1: 1, line: { color: colour, width: 2, dash: dash || "solid" } });
      notes.push({ x: ds, xref: "x", yref: "paper", y: 1, yanchor: "bottom", yshift: (notes.length % 2) * 15, text: text,
        showarrow: false, font: { color: colour, size: 11 } });
    }
    if (s.alarm && s.confirmed && s.alarm < s.confirmed) {
      shapes.push({ type: "rect", xref: "x", yref: "paper", x0: s.alarm, x1: s.confirmed, y0: 0, y1: 1, fillcolor: "#dd6b20",
        opacity: 0.08, line: { width: 0 } });
    }
    shapes.push({ type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: s.risk_warn, y1: s.risk_warn,
      line: { color: "#dd6b20", width: 1, dash: "dot" } });
    mark(s.first_drift, "#718096", "drift", "dot");
    mark(s.alarm, "#dd6b20", "risk alarm");
    mark(s.confirmed, "#c53030", "labels confirm" + (s.lead_days > 0 ? ": " + s.lead_days + " days later" : ""));
    s.moves.forEach(function (m) { mark(m.ds, "#2f855a", "v" + m.version + (m.event === "promoted" ? " promoted" : " rolled back")); });
    chart("story", [
      { type: "scatter", mode: "lines", name: "failure risk", x: s.days, y: s.risk, line: { color: "#dd6b20" },
        hovertemplate: "%{x}: risk %{y:.2f}<extra></extra>" },
      { type: "scatter", mode: "lines+markers", name: "champion AUC on the day's customers", x: s.days, y: s.auc, yaxis: "y2",
        line: { color: "#2b6cb0" }, marker: { size: 4 }, customdata: s.auc_version, hovertemplate: "v%{customdata} %{x}: AUC %{y:.3f}<extra></extra>" }],
      { title: { text: "Failure risk (dotted: alarm at " + num(s.risk_warn, 2) + ") and the champion's AUC, per day" }, height: 360,
        margin: { t: 80, r: 60, b: 50, l: 60 }, shapes: shapes, annotations: notes, legend: { orientation: "h", y: -0.16 },
        yaxis: { title: { text: "failure risk" }, range: [0, 1] }, yaxis2: { title: { text: "AUC" }, overlaying: "y", side: "right", tickformat: ".2f" } });
  }
  function overview() {
    return Promise.all([api("overview"), api("story")]).then(function (answers) {
      var o = answers[0], story = answers[1];
      if (!o.ds) { main.innerHTML = '<p class="muted">' + esc(o.note) + "</p>"; return; }
      var run = o.run || {}, risk = o.failure_risk;
      var cards = card("Day", '<div class="big">' + esc(o.ds) + "</div>" + (o.note ? '<p class="muted">' + esc(o.note) + "</p>" : "") +
          '<a href="run/' + esc(o.ds) + '">this day\'s run</a>') +
        card("Champion / challenger", '<div class="big">v' + esc(run.champion_version) + " / " +
          (run.challenger_version ? "v" + esc(run.challenger_version) : "none") + "</div>" +
          (o.last_promotion ? '<p class="muted">last ' + esc(o.last_promotion.event.replace("_", " ")) + " " +
            esc(o.last_promotion.ds) + ": v" + esc(o.last_promotion.from_version) + " → v" + esc(o.last_promotion.version) + "</p>" : "")) +
        card("Decision", '<div class="big">' + esc(run.decision) + (run.promoted ? " + promoted" : "") + "</div><ul>" +
          (run.reasons || []).map(function (r) { return "<li>" + esc(r) + "</li>"; }).join("") + "</ul>") +
        card("Drift", '<div class="big">' + sev(run.drift_severity) + "</div>share " + num(run.drift_share, 2) +
          ", weighted PSI " + num(run.weighted_drift) + ", prediction PSI " + num(run.prediction_psi)) +
        card("Failure risk", risk ? (risk.available ? '<div class="big">' + num(risk.risk, 2) + "</div>" : "not available") +
          '<p class="muted">' + esc(risk.reason) + "</p>" : '<p class="muted">not recorded</p>');
      main.innerHTML = '<div class="actions"><button id="retrain" type="button">Retrain now</button> ' +
        '<span class="muted">runs ' + esc(MONITORING_DAG) + " for " + esc(o.ds) + ' with force_retrain</span> <span id="action-result" class="action-result"></span></div>' +
        '<div id="story" class="chart"></div><div class="cards">' + cards + '</div><h2>Failure-risk drivers</h2><div id="drivers" class="chart"></div>' +
        "<h2>Open alerts (last 7 days)</h2>" + table(["day", "kind", "severity", "message", "episode"], o.open_alerts.map(function (a) {
          return [esc(a.ds), esc(a.kind), sev(a.severity), esc(a.message), episodeState(a.episode)]; }));
      document.getElementById("retrain").onclick = function () {
        trigger(MONITORING_DAG, { force_retrain: true, batch_date: o.ds }, "Retrain now (Model Health, " + o.ds + ")",
          document.getElementById("action-result"));
      };
      storyChart(story);
      var drivers = (risk && risk.drivers) || [];
      chart("drivers", [{ type: "bar", orientation: "h", y: drivers.map(function (d) { return d.feature; }),
        x: drivers.map(function (d) { return d.contribution; }),
        text: drivers.map(function (d) { return "value " + d.value; }) }],
        { title: { text: "Contribution to the failure risk on " + o.ds }, height: 300, yaxis: { automargin: true } });
    });
  }

  // -- Drift ------------------------------------------------------------------------------------------
  function drift() {
    main.innerHTML = '<div id="heatmap" class="chart"></div><div id="psi" class="chart"></div>' +
      '<div id="scores" class="chart"></div><h2>Reference vs current</h2><div class="controls">' +
      '<label>feature <select id="feature"></select></label><label>day <select id="day"></select></label></div>' +
      '<div id="feature-chart" class="chart"></div>';
    return Promise.all([api("drift/heatmap"), api("drift/scores")]).then(function (res) {
      var h = res[0], s = res[1];
      chart("heatmap", [{ type: "heatmap", x: h.days, y: h.features, z: h.psi, colorscale: "YlOrRd", zmin: 0,
        colorbar: { title: { text: "PSI" } }, hovertemplate: "%{y} on %{x}: PSI %{z:.3f}<extra></extra>" },
        { type: "scatter", mode: "markers", name: "drifted", marker: { symbol: "x", color: "#1a202c", size: 6 },
          x: [].concat.apply([], h.features.map(function (f, i) { return h.days.filter(function (d, j) { return h.drifted[i][j]; }); })),
          y: [].concat.apply([], h.features.map(function (f, i) { return h.days.filter(function (d, j) { return h.drifted[i][j]; }).map(function () { return f; }); })) }],
        { title: { text: "PSI per feature and day (× drifted)" }, height: Math.max(360, 22 * h.features.length + 120),
          yaxis: { automargin: true, autorange: "reversed" } });
      chart("psi", [{ type: "scatter", mode: "lines+markers", x: s.days, y: s.prediction_psi, name: "prediction PSI" }],
        { title: { text: "Prediction-score PSI per day" }, height: 300, yaxis: { title: { text: "PSI" }, rangemode: "tozero" } });
      var hist = s.histogram;
      if (hist.edges) {
        var labels = hist.edges.slice(0, -1).map(function (e, i) { return num(e, 2) + "–" + num(hist.edges[i + 1], 2); });
        var z = labels.map(function (_, b) { return hist.current.map(function (row) { return row[b]; }); });
        chart("scores", [{ type: "heatmap", x: hist.days, y: labels, z: z, colorscale: "Blues",
          colorbar: { title: { text: "share" } }, hovertemplate: "scores %{y} on %{x}: %{z:.3f}<extra></extra>" }],
          { title: { text: "Score distribution per day (reference shares: " + hist.reference.map(function (r) { return num(r, 2); }).join(", ") + ")" }, height: 360 });
      } else {
        document.getElementById("scores").innerHTML = '<p class="muted">no score histograms (no drift report with a prediction histogram in range)</p>';
      }
      var featureSel = document.getElementById("feature"), daySel = document.getElementById("day");
      featureSel.innerHTML = h.features.map(function (f) { return "<option>" + esc(f) + "</option>"; }).join("");
      daySel.innerHTML = h.days.slice().reverse().map(function (d) { return "<option>" + esc(d) + "</option>"; }).join("");
      function draw() {
        if (!daySel.value) { return; }
        api("drift/feature", { ds: daySel.value, feature: featureSel.value }).then(function (f) {
          if (!f.available) { document.getElementById("feature-chart").innerHTML = '<p class="muted">' + esc(f.why) + "</p>"; return; }
          chart("feature-chart", [{ type: "bar", name: "reference", x: f.labels, y: f.reference, marker: { color: "#a0aec0" } },
            { type: "bar", name: "current (" + f.ds + ")", x: f.labels, y: f.current, marker: { color: "#c05621" } }],
            { barmode: "group", title: { text: f.feature + ": PSI " + num(f.psi) + " (" + f.severity + ")" }, yaxis: { title: { text: "share" } } });
        }).catch(fail);
      }
      featureSel.onchange = draw; daySel.onchange = draw;
      document.getElementById("heatmap").on("plotly_click", function (ev) {
        var p = ev.points[0]; featureSel.value = p.y; daySel.value = p.x; draw();
      });
      draw();
    });
  }

  // -- Performance ------------------------------------------------------------------------------------
  function band(x, low, high, colour, name) {
    return [{ type: "scatter", mode: "lines", x: x, y: high, line: { width: 0 }, showlegend: false, hoverinfo: "skip", legendgroup: name },
      { type: "scatter", mode: "lines", x: x, y: low, line: { width: 0 }, fill: "tonexty", fillcolor: colour + "33",
        name: name + " band", showlegend: false, hoverinfo: "skip", legendgroup: name }];
  }
  function performance() {
    return api("performance").then(function (p) {
      var delay = p.label_delay;
      main.innerHTML = '<p class="muted">Measured on each day\'s customers once their labels arrived (delay ' + esc(delay.delay_days) +
        " days). Shaded grey: monitored days without labels yet" + (delay.from ? " (" + esc(delay.from) + " – " + esc(delay.to) + ")" : " (none)") +
        ". Bands: AUC from its lower confidence bound; precision and recall 95 % Wilson intervals; F1 no band.</p>" +
        p.metrics.map(function (m) { return '<div id="perf-' + m + '" class="chart"></div>'; }).join("");
      p.metrics.forEach(function (m) {
        var traces = [];
        p.roles.forEach(function (role) {
          var s = p.series[role], colour = ROLE_COLOURS[role] || "#4a5568";
          if (m === "roc_auc") { traces = traces.concat(band(s.observed_ds, s.roc_auc_lower, s.roc_auc, colour, role)); }
          if (m === "precision" || m === "recall") { traces = traces.concat(band(s.observed_ds, s[m + "_lower"], s[m + "_upper"], colour, role)); }
          traces.push({ type: "scatter", mode: "lines+markers", name: role, x: s.observed_ds, y: s[m], line: { color: colour }, legendgroup: role,
            customdata: s.model_version, hovertemplate: role + " v%{customdata} %{x}: %{y:.3f}<extra></extra>" });
        });
        var shapes = delay.from ? [{ type: "rect", xref: "x", yref: "paper", x0: delay.from, x1: delay.to, y0: 0, y1: 1,
          fillcolor: "#a0aec0", opacity: 0.25, line: { width: 0 } }] : [];
        chart("perf-" + m, traces, { title: { text: METRIC_NAMES[m] + " per observed day, champion vs challenger" }, height: 320, shapes: shapes });
      });
    });
  }

  // -- Models -----------------------------------------------------------------------------------------
  function models() {
    return api("models").then(function (m) {
      var rows = m.versions.map(function (v) {
        var r = v.registry || {};
        var window = r.training_window ? Object.keys(r.training_window).map(function (k) { return esc(k) + " " + esc(r.training_window[k]); }).join("<br>") : "–";
        var metrics = r.metrics ? Object.keys(r.metrics).map(function (k) { return esc(k) + " " + num(r.metrics[k]); }).join("<br>") : "–";
        return ["v" + esc(v.version) + (v.role_now ? " <strong>" + esc(v.role_now) + "</strong>" : ""), esc(r.trigger), window,
          "AUC " + num(r.reference_auc) + "<br>F1 " + num(r.reference_f1), metrics,
          esc(v.champion_days) + " / " + esc(v.challenger_days),
          v.events.map(function (e) { return esc(e.ds) + " " + esc(e.event) + (e.reason ? ": " + esc(e.reason) : ""); }).join("<br>") || "–",
          v.shap_importance ? '<a href="#" data-shap="' + esc(v.version) + '">show</a>' : '<span class="muted">' + esc(v.shap_note) + "</span>",
          v.role_now === "champion" ? '<span class="muted">champion</span>' :
            '<button type="button" data-rollback="' + esc(v.version) + '">Roll back to v' + esc(v.version) + "</button>"];
      });
      main.innerHTML = (m.registry_note ? '<p class="error">' + esc(m.registry_note) + "</p>" : "") + "<h2>Versions of " + esc(m.model_name) + "</h2>" +
        '<div class="actions"><label>reason for a rollback <input id="rollback-reason" size="40" placeholder="why (required)"></label> ' +
        '<span id="action-result" class="action-result"></span></div>' +
        table(["version", "trigger", "training window", "reference", "run metrics", "days champion / challenger", "events", "SHAP", ""], rows) +
        '<div id="shap" class="chart"></div><h2>Promotions and rollbacks</h2>' +
        table(["day", "event", "from", "to", "reason"], m.history.map(function (e) {
          return [esc(e.ds), esc(e.event), "v" + esc(e.from_version), "v" + esc(e.version), esc(e.reason)]; }));
      function shap(version) {
        var v = m.versions.filter(function (x) { return String(x.version) === String(version); })[0];
        var names = Object.keys(v.shap_importance);
        chart("shap", [{ type: "bar", orientation: "h", y: names, x: names.map(function (n) { return v.shap_importance[n]; }) }],
          { title: { text: "SHAP importance of v" + v.version + " (mean |SHAP|, normalised)" }, height: Math.max(300, 20 * names.length + 100),
            yaxis: { automargin: true, autorange: "reversed" } });
      }
      Array.prototype.forEach.call(document.querySelectorAll("[data-shap]"), function (a) {
        a.onclick = function (ev) { ev.preventDefault(); shap(a.getAttribute("data-shap")); };
      });
      Array.prototype.forEach.call(document.querySelectorAll("[data-rollback]"), function (b) {
        b.onclick = function () {
          var out = document.getElementById("action-result"), reason = document.getElementById("rollback-reason").value.trim();
          if (!reason) { out.className = "action-result error"; out.textContent = "Type a reason for the rollback first."; return; }
          var version = b.getAttribute("data-rollback");
          trigger(ROLLBACK_DAG, { version: version, reason: reason }, "Roll back to v" + version + " (Model Health): " + reason, out);
        };
      });
      var first = m.versions.filter(function (v) { return v.shap_importance; })[0];
      if (first) { shap(first.version); } else { document.getElementById("shap").style.display = "none"; }
    });
  }

  // -- Alerts -----------------------------------------------------------------------------------------
  // Acknowledging an episode is a route of this app (it writes the monitoring store); the _token cookie goes with
  // it and the app asks Airflow whether the user may edit the monitoring DAG's runs.
  var ACK_WHY = { 401: "not logged in", 403: "your Airflow user may not acknowledge alerts (it needs to edit runs of " +
    MONITORING_DAG + ")", 404: "no such alert episode" };
  function episodeState(e) {  // the Overview's read-only view of an alert's episode (the Alerts page acknowledges)
    if (!e) { return '<span class="muted">no episode</span>'; }
    if (e.state !== "open") { return '<span class="muted">cleared ' + esc(e.cleared_ds || "") + "</span>"; }
    if (e.acknowledged_at) { return '<span class="acked">acknowledged by ' + esc(e.acknowledged_by) + "</span>"; }
    return '<a href="alerts">open, not acknowledged</a>';
  }
  function acknowledged(e) {
    if (!e) { return '<span class="muted">no episode</span>'; }
    if (e.acknowledged_at) {
      return '<span class="acked" data-acked="' + esc(e.id) + '">acknowledged by ' + esc(e.acknowledged_by) +
        '</span><br><span class="muted">' + esc(e.acknowledged_at.replace("T", " ")) + "</span>";
    }
    return '<button type="button" data-ack="' + esc(e.id) + '">Acknowledge</button>';
  }
  function acknowledge(id, out) {
    out.className = "action-result muted"; out.textContent = "acknowledging…";
    return fetch(base + "health/api/alerts/episodes/" + encodeURIComponent(id) + "/acknowledge",
      { method: "POST", credentials: "same-origin", headers: { Accept: "application/json" } }).then(function (r) {
      if (!r.ok) {
        return detail(r).then(function (d) {
          throw new Error("Acknowledging failed: " + r.status + " " + (ACK_WHY[r.status] ? ACK_WHY[r.status] + ": " : "") + d);
        });
      }
      return alerts();  // the page again, with who acknowledged it
    }).catch(function (error) { out.className = "action-result error"; out.textContent = error.message || String(error); });
  }
  function alerts() {
    return api("alerts").then(function (a) {
      main.innerHTML = '<div id="counts" class="chart"></div>' +
        '<div class="actions"><span class="muted">Acknowledged, an open episode notifies nothing more until it clears.</span> ' +
        '<span id="action-result" class="action-result"></span></div>' +
        "<h2>Open episodes (" + esc(a.open_episodes.length) + ")</h2>" +
        table(["kind", "since", "last seen", "severity", "message", "acknowledged"], a.open_episodes.map(function (e) {
          return [esc(e.kind), esc(e.first_ds), esc(e.last_ds), sev(e.severity), esc(e.message), acknowledged(e)]; })) +
        "<h2>History (" + esc(a.total) + ")</h2>" +
        table(["day", "kind", "severity", "message", "acknowledged"], a.alerts.map(function (x) {
          return [esc(x.ds), esc(x.kind), sev(x.severity), esc(x.message), acknowledged(x.episode)]; }));
      Array.prototype.forEach.call(document.querySelectorAll("[data-ack]"), function (b) {
        b.onclick = function () { acknowledge(b.getAttribute("data-ack"), document.getElementById("action-result")); };
      });
      var days = {}, severities = Object.keys(a.by_severity);
      a.alerts.forEach(function (x) { days[x.ds] = days[x.ds] || {}; days[x.ds][x.severity] = (days[x.ds][x.severity] || 0) + 1; });
      var x = Object.keys(days).sort();
      chart("counts", severities.map(function (s) {
        return { type: "bar", name: s, x: x, y: x.map(function (d) { return days[d][s] || 0; }),
          marker: { color: { critical: "#c53030", warn: "#d69e2e", warning: "#d69e2e" }[s] } };
      }), { barmode: "stack", title: { text: "Alerts per day by severity" }, height: 300 });
    });
  }

  // -- One day (the DAG-run tab) ------------------------------------------------------------------------
  function run(init) {
    if (!init.ds) {
      main.innerHTML = '<p class="muted">' + esc(init.note || "no batch date for this run") + "</p>";
      return Promise.resolve();
    }
    return api("run/" + encodeURIComponent(init.ds)).then(function (d) {
      var r = d.run || {}, v = d.validation, dr = d.drift;
      var reports = base + "reports/" + encodeURIComponent(d.ds) + "/";
      var links = Object.keys(d.report_exists).filter(function (k) { return d.report_exists[k]; })
        .map(function (k) { return '<a href="' + reports + esc(k) + '">' + esc(k) + "</a>"; }).join(" · ");
      main.innerHTML = "<h2>" + esc(d.ds) + (init.run_id ? ' <span class="muted">(' + esc(init.run_id) + ")</span>" : "") + "</h2>" +
        (d.note ? '<p class="muted">' + esc(d.note) + "</p>" : "") + '<div class="cards">' +
        card("Decision", '<div class="big">' + esc(r.decision) + (r.promoted ? " + promoted" : "") + "</div><ul>" +
          (r.reasons || []).map(function (x) { return "<li>" + esc(x) + "</li>"; }).join("") + "</ul>rows " + esc(r.rows) +
          ", champion v" + esc(r.champion_version) + ", challenger " + (r.challenger_version ? "v" + esc(r.challenger_version) : "none")) +
        card("Validation", v ? '<div class="big">' + sev(v.status) + '</div><p><a href="' + reports +
          'validation.html">Open the validation page</a> (every expectation)</p>' + esc(v.summary) +
          ((v.failures || []).length ? "<ul>" + v.failures.map(function (x) { return "<li>" + esc(x) + "</li>"; }).join("") + "</ul>" : "") +
          ((v.warnings || []).length ? '<p class="muted">warnings: ' + v.warnings.map(esc).join("; ") + "</p>" : "")
          : '<p class="muted">' + esc(d.why_missing["validation.json"]) + "</p>") +
        card("Drift", dr ? '<div class="big">' + sev(dr.severity) + "</div>" + esc(dr.n_drifted) + " of " + esc(dr.n_features) +
          " features drifted, weighted PSI " + num(dr.weighted_psi) + ", prediction PSI " + num(dr.prediction_psi)
          : '<p class="muted">' + esc(d.why_missing["drift.json"]) + "</p>") +
        card("Failure risk", d.failure_risk ? '<div class="big">' + num(d.failure_risk.risk, 2) + "</div>" + esc(d.failure_risk.reason) : '<p class="muted">not recorded</p>') +
        "</div><p>Reports: " + (links || '<span class="muted">none</span>') + "</p>" +
        (dr ? "<h3>Most drifted features</h3>" + table(["feature", "PSI", "severity"], dr.top_features.map(function (f) {
          return [esc(f.feature), num(f.psi), sev(f.severity)]; })) : "") +
        "<h3>Alerts</h3>" + table(["kind", "severity", "message"], d.alerts.map(function (a) { return [esc(a.kind), sev(a.severity), esc(a.message)]; })) +
        (d.model_events.length ? "<h3>Model events</h3>" + table(["event", "version", "from", "reason"], d.model_events.map(function (e) {
          return [esc(e.event), "v" + esc(e.version), e.from_version ? "v" + esc(e.from_version) : "–", esc(e.reason)]; })) : "") +
        (d.report_exists["drift.html"] ? '<h3>Drift report</h3><iframe class="report" src="' + reports + 'drift.html" title="drift report"></iframe>' : "");
    });
  }

  var PAGES = { overview: overview, drift: drift, performance: performance, models: models, alerts: alerts, run: run };

  function start() {
    body = document.body; base = body.getAttribute("data-base"); main = document.getElementById("main");
    var init = JSON.parse(body.getAttribute("data-init") || "{}");
    var page = PAGES[body.getAttribute("data-page")];
    Promise.resolve().then(function () { return page(init); }).catch(fail);
  }

  return { start: start };
})();
