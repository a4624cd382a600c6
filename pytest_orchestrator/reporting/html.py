"""The report as one self-contained HTML page: summary, what needs attention, a Gantt timeline and the DAG.

Everything is inline (CSS, JS, SVG, the report's JSON); nothing is fetched when the page is opened, so it reads the
same offline from a CI artifact. The SVG is drawn here, in Python (``layout.py`` computes the DAG's layered
drawing); the page's small script only adds the interaction: details of a clicked node or bar, hover times, focus
on a node's ancestors and descendants, search and zoom.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import datetime
import functools
import html
import importlib.resources
import itertools
import json
from typing import Any

from pytest_orchestrator.reporting.layout import NODE_H
from pytest_orchestrator.reporting.layout import NODE_W
from pytest_orchestrator.reporting.layout import layout_dag
from pytest_orchestrator.reporting.layout import nice_ticks
from pytest_orchestrator.reporting.secrets import SecretMasker


__all__ = ["format_seconds", "render_html"]

_BAD = ("failed", "error", "timeout")
_UNRUN = ("skipped", "cancelled")
#: timeline geometry
_LABEL_W = 96
_PLOT_W = 1040
_AXIS_H = 26
_ATTENTION_ROWS = 60
_DASH = "\N{EN DASH}"


@functools.cache
def _asset(name: str) -> str:
    return importlib.resources.files("pytest_orchestrator.reporting").joinpath("assets", name).read_text("utf-8")


def format_seconds(seconds: float | None) -> str:
    """``850 ms``, ``4.21 s``, ``2m 05s``, ``1h 02m``."""
    if seconds is None:
        return _DASH
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _short(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    return "…" + text[-(limit - 1) :] if limit > 1 else "…"


def _label(item: Mapping[str, Any]) -> str:
    name = str(item["name"])
    return name.rsplit("::", 1)[-1] if "::" in name and item["kind"] == "test" else name


def _when(ts: float | None) -> str:
    if ts is None:
        return _DASH
    return datetime.datetime.fromtimestamp(ts).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z")


def _header(report: Mapping[str, Any]) -> str:
    ok = report["success"]
    counts = report["counts"]
    eff = report["efficiency"]
    stats = [
        (str(len(report["items"])), "items"),
        (format_seconds(report["wall_time"]), "wall time"),
        (format_seconds(report["total_duration"]), "summed durations"),
        (_DASH if eff is None else f"{eff:.0%}", f"parallel efficiency ({len(report['workers'])} lanes)"),
    ]
    if report["critical_path"]:
        path = report["critical_path"]
        stats.append((format_seconds(report["critical_path_duration"]), f"critical path ({len(path)} items)"))
    chips = "".join(f'<span class="chip t-{_e(s)}">{n} {_e(s)}</span>' for s, n in sorted(counts.items()))
    run_id = f" · run <code>{_e(report['run_id'])}</code>" if report["run_id"] else ""
    return (
        '<header class="top"><div class="title">'
        f"<h1>{_e(report['name'])}</h1>"
        f'<span class="pill {"ok" if ok else "bad"}">{"passed" if ok else "failed"}</span>'
        f'<span class="pill kind">{_e(report["kind"])}</span></div>'
        f'<div class="sub">started {_e(_when(report["started_at"]))}{run_id}</div>'
        '<div class="stats">'
        + "".join(f'<div class="stat"><b>{_e(v)}</b><span>{_e(k)}</span></div>' for v, k in stats)
        + f'</div><div class="counts">{chips}</div></header>'
    )


def _attention(report: Mapping[str, Any], index: Mapping[str, int]) -> str:
    items = report["items"]
    rows: list[tuple[int, str, str]] = []
    for i, item in enumerate(items):
        if item["status"] in _BAD:
            outcome = "timeout" if any(a["outcome"] == "timeout" for a in item["attempts"][-1:]) else item["status"]
            rows.append((i, outcome, (item["error"] or "").strip().splitlines()[0:1][0] if item["error"] else ""))
    for i, item in enumerate(items):
        if item["status"] in ("completed", "passed") and len(item["attempts"]) > 1:
            rows.append((i, "flaky", f"passed on attempt {len(item['attempts'])}"))
    by_root: dict[str, list[int]] = {}
    for i, item in enumerate(items):
        if item["status"] in _UNRUN and item["root_cause"] in index:
            by_root.setdefault(item["root_cause"], []).append(i)
    for root, members in by_root.items():
        names = ", ".join(_label(items[m]) for m in members[:3]) + (", …" if len(members) > 3 else "")
        n = len(members)
        rows.append((index[root], "blocked", f"{n} dependent item{'s' if n != 1 else ''} skipped: {names}"))
    if not rows:
        return ""
    body = "".join(
        f'<li data-i="{i}"><span class="tag t-{_e(tag)}">{_e(tag)}</span>'
        f'<span class="what">{_e(items[i]["name"])}</span><span class="why">{_e(why)}</span></li>'
        for i, tag, why in rows[:_ATTENTION_ROWS]
    )
    more = len(rows) - _ATTENTION_ROWS
    if more > 0:
        body += f'<li class="empty">and {more} more</li>'
    return (
        f'<section class="card" id="attention"><h2>Needs attention <span class="hint">{len(rows)}</span></h2>'
        f'<ul class="attention">{body}</ul></section>'
    )


def _critical(report: Mapping[str, Any], index: Mapping[str, int]) -> str:
    path = report["critical_path"]
    if not path:
        return ""
    items = report["items"]
    links = '<span class="arrow">→</span>'.join(
        f'<a data-i="{index[p]}">{_e(_short(items[index[p]]["name"], 40))}</a>' for p in path
    )
    return (
        '<section class="card"><h2>Critical path <span class="hint">the longest chain of dependencies, '
        f"{_e(format_seconds(report['critical_path_duration']))}</span></h2>"
        f'<div class="crumbs">{links}</div></section>'
    )


def _timeline(report: Mapping[str, Any]) -> str:
    items: Sequence[Mapping[str, Any]] = report["items"]
    crit = set(report["critical_path"])
    lanes = list(report["workers"])
    bars: list[tuple[int, int, Mapping[str, Any]]] = []
    for i, item in enumerate(items):
        for k, a in enumerate(item["attempts"]):
            if a["start"] is not None and a["end"] is not None:
                bars.append((i, k, a))
                lane = a.get("worker") or item["worker"] or "other"
                if lane not in lanes:
                    lanes.append(lane)
    skips = [
        (i, item["finished_at"])
        for i, item in enumerate(items)
        if item["status"] in _UNRUN and not item["attempts"] and item["finished_at"] is not None
    ]
    if not bars and not skips:
        return (
            '<section class="card"><h2>Timeline</h2><div class="empty">No timed attempts in this run.</div></section>'
        )
    t0 = report["started_at"]
    if t0 is None:
        t0 = min([a["start"] for _, _, a in bars] + [t for _, t in skips])
    t_end = max([a["end"] for _, _, a in bars] + [t for _, t in skips] + [t0 + report["wall_time"]])
    span = max(t_end - t0, 1e-3)
    rows = (["skipped"] if skips else []) + lanes
    lh = 22 if len(rows) <= 40 else 12
    height = _AXIS_H + len(rows) * lh + 6
    width = _LABEL_W + _PLOT_W + 16
    scale = _PLOT_W / span
    row_of = {name: r for r, name in enumerate(rows)}
    out = [f'<svg id="gantt" width="{width}" height="{height}" viewBox="0 0 {width} {height}">']
    for r, name in enumerate(rows):
        y = _AXIS_H + r * lh
        out.append(f'<rect class="lane-bg{" odd" if r % 2 else ""}" x="0" y="{y}" width="{width}" height="{lh}"/>')
        if lh >= 16 or r % 2 == 0:
            out.append(f'<text class="lane-label" x="8" y="{y + lh / 2 + 4:.1f}">{_e(_short(str(name), 12))}</text>')
    out.append('<g class="axis">')
    for t in nice_ticks(span):
        x = _LABEL_W + t * scale
        out.append(f'<line x1="{x:.1f}" y1="{_AXIS_H - 6}" x2="{x:.1f}" y2="{height}"/>')
        out.append(f'<text x="{x + 3:.1f}" y="{_AXIS_H - 10}">{_e(_tick(t, span))}</text>')
    out.append('</g><g id="bars">')
    for i, k, a in bars:
        item = items[i]
        lane = a.get("worker") or item["worker"] or "other"
        x = _LABEL_W + (a["start"] - t0) * scale
        w = max((a["end"] - a["start"]) * scale, 1.5)
        y = _AXIS_H + row_of[lane] * lh + 3
        cls = f"bar c-{a['outcome']}"
        if k < len(item["attempts"]) - 1:
            cls += " retry"
        if item["id"] in crit:
            cls += " crit"
        out.append(
            f'<rect class="{cls}" data-i="{i}" data-a="{k}" x="{x:.1f}" y="{y}" width="{w:.1f}" '
            f'height="{lh - 6}" rx="3"/>'
        )
        if a["outcome"] == "timeout":
            out.append(f'<line class="tomark" x1="{x + w:.1f}" y1="{y - 2}" x2="{x + w:.1f}" y2="{y + lh - 4}"/>')
        chars = int((w - 8) / 6.6)
        if lh >= 16 and chars >= 4:
            label = _short(_label(item), chars) + (f" #{a['number']}" if len(item["attempts"]) > 1 else "")
            out.append(f'<text class="barlabel" x="{x + 4:.1f}" y="{y + lh / 2 + 1:.1f}">{_e(label)}</text>')
    for i, t in skips:
        x = _LABEL_W + (t - t0) * scale
        ym = _AXIS_H + lh / 2
        s = lh / 2 - 3
        out.append(
            f'<path class="skipmark" data-i="{i}" d="M{x:.1f} {ym - s:.1f}l{s:.1f} {s:.1f}l{-s:.1f} {s:.1f}'
            f'l{-s:.1f} {-s:.1f}z"/>'
        )
    out.append("</g></svg>")
    legend = (
        '<div class="legend"><span><i style="background:var(--ok)"></i>passed</span>'
        '<span><i style="background:var(--bad)"></i>failed attempt</span>'
        '<span><i style="background:var(--to)"></i>timed out</span>'
        '<span><i style="background:var(--skip)"></i>skipped / cancelled</span>'
        '<span><i style="background:var(--panel);outline:2px solid var(--crit)"></i>critical path</span>'
        "<span>◆ dependency skip</span></div>"
    )
    hint = f"one lane per {'worker' if not lanes or not lanes[0].startswith('slot') else 'concurrency slot'}"
    return (
        f'<section class="card" id="timeline"><h2>Timeline <span class="hint">{hint}, one bar per attempt; '
        f'hover for times</span></h2><div class="scroll">{"".join(out)}</div>{legend}</section>'
    )


def _tick(t: float, span: float) -> str:
    if span >= 120:
        m, s = divmod(int(t), 60)
        return f"{m}:{s:02d}"
    if span >= 3:
        return f"{t:g}s"
    return f"{t * 1000:.0f}ms"


def _graph(report: Mapping[str, Any]) -> str:
    items: Sequence[Mapping[str, Any]] = report["items"]
    index = {item["id"]: i for i, item in enumerate(items)}
    edges = [(e["from"], e["to"]) for e in report["edges"]]
    lay = layout_dag([it["id"] for it in items], edges, {it["id"]: it["stage"] for it in items})
    crit = report["critical_path"]
    crit_edges = set(itertools.pairwise(crit))
    crit_set = set(crit)
    w, h = lay.width, lay.height
    out = [
        f'<svg id="dag" width="{w:.0f}" height="{h:.0f}" viewBox="0 0 {w:.0f} {h:.0f}" data-w="{w:.0f}" '
        f'data-h="{h:.0f}"><g id="clusters">'
    ]
    for stage, x0, y0, x1, y1 in lay.clusters:
        out.append(
            f'<g class="cluster"><rect x="{x0:.1f}" y="{y0:.1f}" width="{x1 - x0:.1f}" height="{y1 - y0:.1f}" rx="10"/>'
            f'<text x="{x0 + 10:.1f}" y="{y0 + 15:.1f}">{_e(stage)}</text></g>'
        )
    if lay.grid_top is not None and edges:
        out.append(f'<text class="gridlabel" x="24" y="{lay.grid_top - 8:.1f}">items with no dependencies</text>')
    out.append('</g><g id="edges">')
    kinds = {(e["from"], e["to"]): e.get("kind") for e in report["edges"]}
    for a, b, pts in lay.edges:
        d = f"M{pts[0][0]:.1f} {pts[0][1]:.1f}"
        for (px, py), (qx, qy) in itertools.pairwise(pts):
            dx = (qx - px) / 2
            d += f"C{px + dx:.1f} {py:.1f} {qx - dx:.1f} {qy:.1f} {qx:.1f} {qy:.1f}"
        cls = "edge" + (" crit" if (a, b) in crit_edges else "") + (" soft" if kinds.get((a, b)) == "soft" else "")
        out.append(f'<path class="{cls}" data-f="{index[a]}" data-t="{index[b]}" d="{d}"/>')
    out.append('</g><g id="nodes">')
    chars = int((NODE_W - 62) / 6.6)
    for i, item in enumerate(items):
        x, y = lay.nodes[item["id"]]
        status = item["status"]
        cls = f"node s-{status}"
        if item["id"] in crit_set:
            cls += " crit"
        if status in ("completed", "passed") and len(item["attempts"]) > 1:
            cls += " flaky"
        dur = format_seconds(item["duration"]) if item["attempts"] else status
        out.append(
            f'<g class="{cls}" data-i="{i}" transform="translate({x:.1f},{y:.1f})">'
            f'<rect class="box" width="{NODE_W}" height="{NODE_H}" rx="6"/>'
            f'<rect class="side c-{status}" width="5" height="{NODE_H}" rx="2"/>'
            f'<text x="12" y="{NODE_H / 2 + 4:.1f}">{_e(_short(_label(item), chars))}</text>'
            f'<text class="dur" x="{NODE_W - 8}" y="{NODE_H / 2 + 4:.1f}" text-anchor="end">{_e(dur)}</text></g>'
        )
    out.append("</g></svg>")
    n_edges = len(report["edges"])
    hint = f"{len(items)} items, {n_edges} edges" + ("" if n_edges else ": no dependencies between items")
    tools = (
        '<div class="tools"><input id="search" type="search" placeholder="find an item… (Enter)">'
        '<button id="zoom-out" title="zoom out">&minus;</button><button id="zoom-fit" title="fit">fit</button>'
        '<button id="zoom-in" title="zoom in">+</button></div>'
    )
    return (
        f'<section class="card" id="graph"><h2>Graph <span class="hint">{_e(hint)}; click a node for details'
        f'</span>{tools}</h2><div class="scroll" id="dag-scroll">{"".join(out)}</div></section>'
    )


def _footer(report: Mapping[str, Any]) -> str:
    env = report["environment"]
    ci = env["ci"]
    rows = [("python", f"{env['python']} ({env.get('implementation', '')})"), ("platform", env["platform"])]
    rows += [(name, version) for name, version in env["packages"].items()]
    rows.append(("CI", (ci["provider"] or "yes") if ci["detected"] else "no"))
    cells = "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in rows)
    return (
        f"<footer><table>{cells}</table><p>schema {_e(report['schema'])} · finished "
        f"{_e(_when(report['finished_at']))} · made by pytest-orchestrator</p></footer>"
    )


def _json_for_script(report: Mapping[str, Any]) -> str:
    # "<" escaped so that no "</script>" (or "<!--") inside a value can end the script element
    return json.dumps(report, separators=(",", ":"), default=str).replace("<", "\\u003c")


def render_html(report: Mapping[str, Any], *, secrets: SecretMasker | None = None) -> str:
    """The self-contained HTML page for ``report`` (a dict as built by ``build_report``).

    Secrets are masked again here (``secrets``, by default over ``os.environ``), so a report dict assembled by
    hand cannot leak into the page either.
    """
    masker = secrets if secrets is not None else SecretMasker()
    report = masker(dict(report))
    index = {item["id"]: i for i, item in enumerate(report["items"])}
    title = f"{report['name']} · {'passed' if report['success'] else 'failed'} · pytest-orchestrator"
    main = _attention(report, index) + _critical(report, index) + _timeline(report) + _graph(report)
    details = (
        '<aside id="details"><section class="card"><h2>Details</h2><div class="body" id="details-body">'
        '<div class="empty">Click a node, a bar or a row to see its attempts, error, output and skip cause.</div>'
        "</div></section></aside>"
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_asset('report.css')}</style></head><body>"
        + _header(report)
        + f'<div class="layout"><div>{main}</div>{details}</div>'
        + _footer(report)
        + '<div id="tip"></div>'
        + f'<script type="application/json" id="report-data">{_json_for_script(report)}</script>'
        + f"<script>{_asset('report.js')}</script></body></html>\n"
    )
