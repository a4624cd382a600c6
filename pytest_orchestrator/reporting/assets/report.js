(function () {
  "use strict";
  var report = JSON.parse(document.getElementById("report-data").textContent);
  var items = report.items;
  var index = new Map();
  items.forEach(function (it, i) { index.set(it.id, i); });
  var dependents = items.map(function () { return []; });
  items.forEach(function (it, i) {
    it.dependencies.forEach(function (d) { if (index.has(d)) dependents[index.get(d)].push(i); });
  });
  var t0 = report.started_at;
  var dag = document.getElementById("dag");
  var gantt = document.getElementById("gantt");
  var nodes = dag ? dag.querySelectorAll("g.node") : [];
  var nodeByIndex = [];
  Array.prototype.forEach.call(nodes, function (n) { nodeByIndex[+n.getAttribute("data-i")] = n; });
  var edges = dag ? Array.prototype.slice.call(dag.querySelectorAll("path.edge")) : [];
  var edgesByNode = items.map(function () { return []; });
  edges.forEach(function (e) {
    edgesByNode[+e.getAttribute("data-f")].push(e);
    edgesByNode[+e.getAttribute("data-t")].push(e);
  });
  var barsByIndex = items.map(function () { return []; });
  if (gantt) {
    Array.prototype.forEach.call(gantt.querySelectorAll(".bar"), function (b) {
      barsByIndex[+b.getAttribute("data-i")].push(b);
    });
  }

  function esc(s) {
    return String(s).replace(/[&<>"']/g, function (c) {
      return { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c];
    });
  }
  function secs(s) {
    if (s === null || s === undefined) return "–";
    if (s < 1) return (s * 1000).toFixed(0) + " ms";
    if (s < 60) return s.toFixed(2) + " s";
    var m = Math.floor(s / 60), r = Math.round(s % 60);
    return m < 60 ? m + "m " + (r < 10 ? "0" : "") + r + "s" : Math.floor(m / 60) + "h " + (m % 60) + "m";
  }
  function at(t) { return t === null || t === undefined || t0 === null ? "–" : "+" + secs(t - t0); }
  function link(i) { return '<a data-i="' + i + '">' + esc(items[i].name) + "</a>"; }

  // -- details ---------------------------------------------------------------------------------------------
  var body = document.getElementById("details-body");
  function details(i) {
    var it = items[i];
    var flaky = (it.status === "completed" || it.status === "passed") && it.attempts.length > 1;
    var h = "<h3>" + esc(it.name) + "</h3>";
    h += '<span class="tag t-' + esc(it.status) + '">' + esc(it.status) + "</span> ";
    if (flaky) h += '<span class="tag t-flaky">flaky</span> ';
    if (report.critical_path.indexOf(it.id) >= 0) h += '<span class="tag" style="color:var(--crit);background:var(--crit-bg)">critical path</span>';
    h += "<dl><dt>kind</dt><dd>" + esc(it.kind) + "</dd>";
    if (it.id !== it.name) h += "<dt>id</dt><dd>" + esc(it.id) + "</dd>";
    h += "<dt>duration</dt><dd>" + secs(it.duration) + "</dd>";
    h += "<dt>started</dt><dd>" + at(it.started_at) + "</dd><dt>finished</dt><dd>" + at(it.finished_at) + "</dd>";
    if (it.worker) h += "<dt>worker</dt><dd>" + esc(it.worker) + "</dd>";
    if (it.stage) h += "<dt>stage</dt><dd>" + esc(it.stage) + "</dd>";
    if (it.tags && it.tags.length) h += "<dt>tags</dt><dd>" + it.tags.map(esc).join(", ") + "</dd>";
    if (it.dependencies.length) {
      h += "<dt>depends on</dt><dd>" + it.dependencies.map(function (d) { return link(index.get(d)); }).join("<br>") + "</dd>";
    }
    if (dependents[i].length) {
      var more = dependents[i].length > 12 ? "<br>and " + (dependents[i].length - 12) + " more" : "";
      h += "<dt>needed by</dt><dd>" + dependents[i].slice(0, 12).map(link).join("<br>") + more + "</dd>";
    }
    h += "</dl>";
    if (it.skip_cause) h += "<h4>Why it did not run</h4><pre>" + esc(it.skip_cause) + "</pre>";
    if (it.root_cause && index.has(it.root_cause)) h += "<h4>Root cause</h4>" + link(index.get(it.root_cause));
    if (it.attempts.length) {
      h += "<h4>Attempts</h4><table><tr><th>#</th><th>start</th><th>took</th><th>outcome</th><th>worker</th></tr>";
      it.attempts.forEach(function (a) {
        var took = a.start !== null && a.end !== null ? secs(a.end - a.start) : "–";
        h += "<tr><td>" + a.number + "</td><td>" + at(a.start) + "</td><td>" + took + '</td><td><span class="tag t-' +
          esc(a.outcome) + '">' + esc(a.outcome) + "</span></td><td>" + esc(a.worker || "") + "</td></tr>";
        if (a.error) h += '<tr><td></td><td colspan="4"><pre>' + esc(a.error) + "</pre></td></tr>";
      });
      h += "</table>";
    }
    if (it.error && !it.attempts.some(function (a) { return a.error === it.error; })) {
      h += "<h4>Error</h4><pre>" + esc(it.error) + "</pre>";
    }
    if (it.output_tail) h += "<h4>Output (last lines)</h4><pre>" + esc(it.output_tail) + "</pre>";
    body.innerHTML = h;
  }

  // -- selection and focus ---------------------------------------------------------------------------------
  var lit = [];
  var selected = null;
  function walk(start, next) {
    var seen = new Set([start]), stack = [start];
    while (stack.length) {
      next(stack.pop()).forEach(function (j) { if (!seen.has(j)) { seen.add(j); stack.push(j); } });
    }
    return seen;
  }
  function clear() {
    lit.forEach(function (el) { el.classList.remove("lit", "sel"); });
    lit = [];
    if (dag) dag.classList.remove("focus");
    selected = null;
  }
  function mark(el, cls) { el.classList.add(cls); lit.push(el); }
  function select(i, reveal) {
    clear();
    selected = i;
    details(i);
    var up = walk(i, function (j) { return items[j].dependencies.map(function (d) { return index.get(d); }); });
    var down = walk(i, function (j) { return dependents[j]; });
    var related = new Set([].concat(Array.from(up), Array.from(down)));
    if (dag && related.size > 1) dag.classList.add("focus");
    related.forEach(function (j) {
      if (nodeByIndex[j]) mark(nodeByIndex[j], "lit");
      edgesByNode[j].forEach(function (e) {
        var f = +e.getAttribute("data-f"), t = +e.getAttribute("data-t");
        if ((up.has(f) && up.has(t)) || (down.has(f) && down.has(t))) mark(e, "lit");
      });
      barsByIndex[j].forEach(function (b) { mark(b, "lit"); });
    });
    if (nodeByIndex[i]) mark(nodeByIndex[i], "sel");
    barsByIndex[i].forEach(function (b) { mark(b, "sel"); });
    if (reveal && nodeByIndex[i]) {
      var box = nodeByIndex[i].getBoundingClientRect(), sc = document.getElementById("dag-scroll").getBoundingClientRect();
      var scroller = document.getElementById("dag-scroll");
      scroller.scrollLeft += box.left - sc.left - sc.width / 2 + box.width / 2;
      scroller.scrollTop += box.top - sc.top - sc.height / 2 + box.height / 2;
    }
  }
  document.addEventListener("click", function (ev) {
    var el = ev.target.closest("[data-i]");
    if (!el || el.classList.contains("edge")) return;
    var reveal = !el.closest("#dag");
    select(+el.getAttribute("data-i"), reveal);
  });
  document.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape") {
      clear();
      body.innerHTML = '<div class="empty">Click a node, a bar or a row to see its attempts, error, output and skip cause.</div>';
    }
  });

  // -- hover -----------------------------------------------------------------------------------------------
  var tip = document.getElementById("tip");
  function tipText(el) {
    var it = items[+el.getAttribute("data-i")];
    var k = el.getAttribute("data-a");
    if (k !== null) {
      var a = it.attempts[+k];
      var t = it.name + "\nattempt " + a.number + " of " + it.attempts.length + ": " + a.outcome +
        "\n" + at(a.start) + " → " + at(a.end) + "  (" + secs(a.end - a.start) + ")";
      if (a.worker) t += "\non " + a.worker;
      if (a.error) t += "\n" + a.error.split("\n")[0];
      return t;
    }
    var s = it.name + "\n" + it.status + (it.attempts.length ? " in " + secs(it.duration) : "");
    if (it.attempts.length > 1) s += " after " + it.attempts.length + " attempts";
    if (it.started_at !== null) s += "\n" + at(it.started_at) + " → " + at(it.finished_at);
    if (it.skip_cause) s += "\n" + it.skip_cause;
    return s;
  }
  document.addEventListener("mouseover", function (ev) {
    var el = ev.target.closest("svg [data-i]");
    if (!el || el.classList.contains("edge")) { tip.style.display = "none"; return; }
    tip.textContent = tipText(el);
    tip.style.display = "block";
  });
  document.addEventListener("mousemove", function (ev) {
    if (tip.style.display !== "block") return;
    var x = ev.clientX + 14, y = ev.clientY + 14;
    if (x + tip.offsetWidth > window.innerWidth - 8) x = ev.clientX - tip.offsetWidth - 10;
    if (y + tip.offsetHeight > window.innerHeight - 8) y = ev.clientY - tip.offsetHeight - 10;
    tip.style.left = x + "px";
    tip.style.top = y + "px";
  });

  // -- zoom and search -------------------------------------------------------------------------------------
  if (dag) {
    var w = +dag.getAttribute("data-w"), h = +dag.getAttribute("data-h"), zoom = 1;
    var scroller = document.getElementById("dag-scroll");
    var setZoom = function (z) {
      zoom = Math.max(0.1, Math.min(3, z));
      dag.setAttribute("width", Math.round(w * zoom));
      dag.setAttribute("height", Math.round(h * zoom));
    };
    document.getElementById("zoom-in").onclick = function () { setZoom(zoom * 1.25); };
    document.getElementById("zoom-out").onclick = function () { setZoom(zoom / 1.25); };
    document.getElementById("zoom-fit").onclick = function () {
      setZoom(Math.min(1, (scroller.clientWidth - 4) / w, Math.max(0.2, (scroller.clientHeight - 4) / h)));
    };
    if (w > scroller.clientWidth) setZoom(Math.max(0.45, (scroller.clientWidth - 4) / w));
    var search = document.getElementById("search");
    var matches = [];
    search.addEventListener("input", function () {
      matches.forEach(function (n) { n.classList.remove("match"); });
      matches = [];
      var q = search.value.trim().toLowerCase();
      if (!q) return;
      items.forEach(function (it, i) {
        if (it.name.toLowerCase().indexOf(q) >= 0 && nodeByIndex[i]) { nodeByIndex[i].classList.add("match"); matches.push(nodeByIndex[i]); }
      });
    });
    search.addEventListener("keydown", function (ev) {
      if (ev.key === "Enter" && matches.length) select(+matches[0].getAttribute("data-i"), true);
    });
  }
  window.__orchestrateReport = { ready: true, items: items.length, renderedAt: performance.now() };
})();
