"""Geometry for the HTML report: the DAG's layered drawing and the timeline's time axis. Pure, no I/O.

The DAG is drawn left to right in the Sugiyama manner: each node sits in the layer after its deepest dependency
(longest path), long edges pass through invisible dummy points, and a few barycentric sweeps order each layer to
cut crossings, keeping the nodes of one stage together so a stage can be drawn as a cluster. A layer taller than
:data:`WRAP` nodes is folded into several columns. Nodes with no edge at all are laid out as a grid under the graph
(a pytest suite without dependency markers is a grid, not a 2,000-node column).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
import dataclasses
import math

from pytest_orchestrator.core.graph import generations
from pytest_orchestrator.errors import WorkflowError


__all__ = ["NODE_H", "NODE_W", "WRAP", "DagLayout", "layout_dag", "nice_ticks"]

NODE_W = 184
NODE_H = 30
GAP_X = 64
GAP_Y = 12
DUMMY_H = 6
STAGE_GAP = 26
PAD = 36
#: most nodes in one column before a layer folds
WRAP = 60
GRID_COLUMNS = 6
_SWEEPS = 6


@dataclasses.dataclass
class DagLayout:
    """Where each node goes (top-left corner), each edge's points, each stage's box, and the drawing's size."""

    nodes: dict[str, tuple[float, float]]
    edges: list[tuple[str, str, list[tuple[float, float]]]]
    clusters: list[tuple[str, float, float, float, float]]
    width: float
    height: float
    #: the top of the grid of nodes without edges (None when there are none)
    grid_top: float | None = None


def _layers(nodes: Sequence[str], deps: Mapping[str, Sequence[str]]) -> dict[str, int]:
    try:
        return {n: i for i, layer in enumerate(generations({n: deps.get(n, ()) for n in nodes})) for n in layer}
    except WorkflowError:  # a cycle: cannot happen for a run that ran; draw in definition order
        return {n: i for i, n in enumerate(nodes)}


def _order(
    layers: list[list[str]], up: Mapping[str, list[str]], down: Mapping[str, list[str]], stage: Mapping[str, str]
) -> None:
    """Barycentric sweeps, in place; within a layer the nodes of one stage stay together."""
    pos: dict[str, float] = {n: float(i) for layer in layers for i, n in enumerate(layer)}

    def reorder(layer: list[str], nbrs: Mapping[str, list[str]]) -> None:
        bary: dict[str, float] = {}
        for n in layer:
            ps = nbrs.get(n)
            bary[n] = sum(pos[p] for p in ps) / len(ps) if ps else pos[n]
        groups: dict[str, list[str]] = {}
        for n in layer:
            groups.setdefault(stage.get(n, ""), []).append(n)
        keyed = sorted(groups.values(), key=lambda g: sum(bary[n] for n in g) / len(g))
        layer[:] = [n for g in keyed for n in sorted(g, key=lambda n: bary[n])]
        for i, n in enumerate(layer):
            pos[n] = float(i)

    for sweep in range(_SWEEPS):
        if sweep % 2 == 0:
            for layer in layers[1:]:
                reorder(layer, up)
        else:
            for layer in reversed(layers[:-1]):
                reorder(layer, down)


def layout_dag(
    nodes: Sequence[str], edges: Sequence[tuple[str, str]], stages: Mapping[str, str | None] | None = None
) -> DagLayout:
    """Lay out ``nodes`` (ids, in definition order) and ``edges`` (dependency, dependent)."""
    stage = {n: s for n, s in (stages or {}).items() if s}
    linked = {n for e in edges for n in e}
    connected = [n for n in nodes if n in linked]
    isolated = [n for n in nodes if n not in linked]
    deps: dict[str, list[str]] = {n: [] for n in connected}
    for a, b in edges:
        deps[b].append(a)
    layer_of = _layers(connected, deps)
    depth = max(layer_of.values(), default=-1) + 1
    layers: list[list[str]] = [[] for _ in range(depth)]
    for n in connected:
        layers[layer_of[n]].append(n)

    # long edges pass through one dummy point per layer they cross (unless there would be too many)
    span = sum(max(0, layer_of[b] - layer_of[a] - 1) for a, b in edges)
    use_dummies = span <= 4 * len(connected) + 200
    up: dict[str, list[str]] = {}
    down: dict[str, list[str]] = {}
    chains: list[tuple[str, str, list[str]]] = []
    dummies: set[str] = set()
    for k, (a, b) in enumerate(edges):
        chain: list[str] = []
        prev = a
        if use_dummies:
            for lvl in range(layer_of[a] + 1, layer_of[b]):
                d = f"\0{k}:{lvl}"
                dummies.add(d)
                if a in stage and stage.get(a) == stage.get(b):
                    stage[d] = stage[a]
                layers[lvl].append(d)
                up.setdefault(d, []).append(prev)
                down.setdefault(prev, []).append(d)
                chain.append(d)
                prev = d
        up.setdefault(b, []).append(prev)
        down.setdefault(prev, []).append(b)
        chains.append((a, b, chain))
    _order(layers, up, down, stage)

    # x: one or more columns per layer; y: near the parents, no overlaps, a gap where the stage changes
    pos: dict[str, tuple[float, float]] = {}
    x = float(PAD)
    bottom = float(PAD)
    for layer in layers:
        for c in range(max(1, math.ceil(len(layer) / WRAP))):
            column = layer[c * WRAP : (c + 1) * WRAP]
            y_prev: float | None = None
            prev_stage: str | None = None
            for i, n in enumerate(column):
                h = DUMMY_H if n in dummies else NODE_H
                parents = [pos[p][1] for p in up.get(n, ()) if p in pos]
                want = sum(parents) / len(parents) if parents else PAD + i * (NODE_H + GAP_Y)
                if y_prev is not None:
                    gap = GAP_Y + (STAGE_GAP if stage.get(n) != prev_stage else 0)
                    want = max(want, y_prev + gap)
                y = max(float(PAD), want)
                pos[n] = (x, y)
                y_prev, prev_stage = y + h, stage.get(n)
                bottom = max(bottom, y + h)
            x += NODE_W + GAP_X

    width = max(x - GAP_X + PAD, float(2 * PAD))
    out_edges: list[tuple[str, str, list[tuple[float, float]]]] = []
    for a, b, chain in chains:
        ax, ay = pos[a]
        bx, by = pos[b]
        points = [(ax + NODE_W, ay + NODE_H / 2)]
        points += [(pos[d][0] + NODE_W / 2, pos[d][1] + DUMMY_H / 2) for d in chain]
        points.append((bx, by + NODE_H / 2))
        out_edges.append((a, b, points))

    boxes: dict[str, list[float]] = {}
    grid_top: float | None = None
    if isolated:
        grid_top = bottom + (2 * STAGE_GAP if connected else 0)
        y = grid_top + (STAGE_GAP if stage else 0)
        groups: dict[str, list[str]] = {}
        for n in isolated:
            groups.setdefault(stage.get(n, ""), []).append(n)
        for members in groups.values():
            for i, n in enumerate(members):
                row, col = divmod(i, GRID_COLUMNS)
                pos[n] = (PAD + col * (NODE_W + GAP_Y), y + row * (NODE_H + GAP_Y))
            y += math.ceil(len(members) / GRID_COLUMNS) * (NODE_H + GAP_Y) + 2 * STAGE_GAP
        bottom = y - 2 * STAGE_GAP
        width = max(width, PAD + GRID_COLUMNS * (NODE_W + GAP_Y) - GAP_Y + PAD)

    for n in nodes:
        s = stage.get(n)
        if s is None:
            continue
        nx, ny = pos[n]
        box = boxes.setdefault(s, [nx, ny, nx + NODE_W, ny + NODE_H])
        box[0], box[1] = min(box[0], nx), min(box[1], ny)
        box[2], box[3] = max(box[2], nx + NODE_W), max(box[3], ny + NODE_H)
    pad = 10.0
    clusters = [(s, b[0] - pad, b[1] - pad - 14, b[2] + pad, b[3] + pad) for s, b in boxes.items()]
    real = {n: p for n, p in pos.items() if n not in dummies}
    return DagLayout(real, out_edges, clusters, width, bottom + PAD, grid_top)


def nice_ticks(span: float, target: int = 8) -> list[float]:
    """Round tick positions from 0 to ``span`` (seconds), about ``target`` of them."""
    if span <= 0:
        return [0.0]
    raw = span / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    return [i * step for i in range(int(span / step) + 1)]
