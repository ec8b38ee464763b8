"""A pipeline spec drawn as an inline SVG (no script, no network): columns users -> router ->
sources (with quotas) -> ranker -> re-ranker -> top-k, one band per branch.

Every component is a ``<g class="node" data-role=...>`` with a tooltip of its params; every
edge is a ``<path class="edge">``. The page embeds the SVG as it is.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

from designer.pipelines.spec import Component, PipelineSpec
from designer.report.markup import e
from designer.report.pipeline_history import source_labels

NODE_W, NODE_H, COL_GAP, ROW, PAD, BAND_PAD, HEADER = 150, 44, 44, 56, 14, 8, 18
PITCH = NODE_W + COL_GAP
COLOURS = {"io": ("#f4f4f4", "#888"), "router": ("#f3ecf9", "#9467bd"), "source": ("#e8f1fb", "#1f77b4"),
           "ranker": ("#fff1e0", "#ff7f0e"), "reranker": ("#eaf7ea", "#2ca02c")}
MAX_TEXT = 24


@dataclass(frozen=True)
class _Node:
    role: str
    x: float                  # left edge
    y: float                  # vertical centre
    title: str
    subtitle: str
    tooltip: str

    def right(self) -> tuple[float, float]:
        return self.x + NODE_W, self.y

    def left(self) -> tuple[float, float]:
        return self.x, self.y


@dataclass(frozen=True)
class _Band:
    """One branch: its sources, and the last of its ranker and re-ranker."""

    branch: int
    top: float
    height: float
    sources: list[_Node]
    last: _Node


Edge = tuple[tuple[float, float], tuple[float, float], str]


def pipeline_svg(spec: PipelineSpec, svg_id: str, caption: str = "") -> str:
    """The graph of ``spec`` as an ``<svg id=svg_id class="pipeline-graph">`` element."""
    columns = ["users"] + (["router"] if spec.router else []) + ["sources", "ranker"] + \
        (["reranker"] if any(b.reranker for b in spec.branches) else []) + ["top-k"]
    col = {name: PAD + i * PITCH for i, name in enumerate(columns)}
    bands, nodes, edges = _bands(spec, col)
    bottom = bands[-1].top + bands[-1].height
    centre = (PAD + bottom) / 2
    users = _Node("io", col["users"], centre, "users", "every scored user", "")
    objective = spec.outer_reward.objective
    constraints = ", ".join(c.describe() for c in spec.outer_reward.constraints)
    output = _Node("io", col["top-k"], centre, "top-k", _short(f"outer: {objective}"),
                   f"outer reward: {objective}" + (f"; constraints: {constraints}" if constraints else ""))
    entry = users
    if spec.router is not None:
        entry = _Node("router", col["router"], centre, _short(spec.router.ref),
                      _short("router · " + _params(spec.router)), _tooltip(spec.router))
        nodes.append(entry)
        edges.append((users.right(), entry.left(), ""))
    for band in bands:
        if spec.router is not None:
            edges.append((entry.right(), (col["sources"] - 8, band.top + band.height / 2), f"label {band.branch}"))
        else:
            edges += [(entry.right(), s.left(), "") for s in band.sources]
        edges.append((band.last.right(), output.left(), ""))
    width, height = col["top-k"] + NODE_W + PAD, bottom + PAD
    right = col["reranker" if "reranker" in col else "ranker"] + NODE_W + 8
    return "".join([f'<svg id="{e(svg_id)}" class="pipeline-graph" xmlns="http://www.w3.org/2000/svg" '
                    f'width="{width}" height="{height:.0f}" viewBox="0 0 {width} {height:.0f}" role="img" '
                    f'aria-label="{e(caption)}">', _defs(svg_id),
                    *(_band(b, col["sources"] - 8, right, spec.router is not None) for b in bands),
                    *(_edge(a, z, text, svg_id) for a, z, text in edges),
                    *(_node(n) for n in nodes + [users, output]), "</svg>"])


def _bands(spec: PipelineSpec, col: dict[str, float]) -> tuple[list[_Band], list[_Node], list[Edge]]:
    """Each branch laid out below the last: sources stacked, ranker and re-ranker centred."""
    bands, nodes, edges, top = [], [], [], PAD
    header = HEADER if spec.router else 0
    for b, (branch, labels) in enumerate(zip(spec.branches, source_labels(spec))):
        height = header + 2 * BAND_PAD + len(branch.sources) * ROW
        first, middle = top + header + BAND_PAD + ROW / 2, top + header + (height - header) / 2
        sources = [_Node("source", col["sources"], first + j * ROW, _short(s.ref), f"quota {s.quota} · {label}",
                         _tooltip(s)) for j, (s, label) in enumerate(zip(branch.sources, labels))]
        last = _Node("ranker", col["ranker"], middle, _short(branch.ranker.ref),
                     _short("ranker · " + _params(branch.ranker)), _tooltip(branch.ranker))
        nodes += sources + [last]
        edges += [(s.right(), last.left(), "") for s in sources]
        if branch.reranker is not None:
            reranker = _Node("reranker", col["reranker"], middle, _short(branch.reranker.ref),
                             _short(f"re-ranker · top {branch.rerank_depth}"), _tooltip(branch.reranker))
            nodes.append(reranker)
            edges.append((last.right(), reranker.left(), ""))
            last = reranker
        bands.append(_Band(b, top, height, sources, last))
        top += height + BAND_PAD
    return bands, nodes, edges


def _defs(svg_id: str) -> str:
    return (f'<defs><marker id="{e(svg_id)}-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            'markerHeight="7" orient="auto-start-reverse"><path d="M0,0L10,5L0,10z" fill="#777"/></marker></defs>')


def _band(band: _Band, left: float, right: float, routed: bool) -> str:
    label = (f'<text class="band-label" x="{left + 6}" y="{band.top + 13}">branch {band.branch}</text>'
             if routed else "")
    return (f'<g class="branch" data-branch="{band.branch}"><rect x="{left}" y="{band.top}" '
            f'width="{right - left}" height="{band.height}" rx="8" fill="#fbfbfb" stroke="#ddd" '
            f'stroke-dasharray="4 3"/>{label}</g>')


def _edge(a: tuple[float, float], z: tuple[float, float], text: str, svg_id: str) -> str:
    (x1, y1), (x2, y2) = a, z
    bend = (x2 - x1) / 2
    label = (f'<text class="edge-label" x="{(x1 + x2) / 2:.0f}" y="{(y1 + y2) / 2 - 4:.0f}" '
             f'text-anchor="middle">{e(text)}</text>') if text else ""
    return (f'<path class="edge" d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1:.1f} {x2 - bend:.1f},{y2:.1f} '
            f'{x2 - 2:.1f},{y2:.1f}" fill="none" stroke="#999" stroke-width="1.4" '
            f'marker-end="url(#{e(svg_id)}-arrow)"/>{label}')


def _node(n: _Node) -> str:
    fill, stroke = COLOURS[n.role]
    tip = f"<title>{e(n.tooltip)}</title>" if n.tooltip else ""
    return (f'<g class="node" data-role="{n.role}">{tip}<rect x="{n.x}" y="{n.y - NODE_H / 2:.1f}" '
            f'width="{NODE_W}" height="{NODE_H}" rx="6" fill="{fill}" stroke="{stroke}" stroke-width="1.5"/>'
            f'<text x="{n.x + NODE_W / 2}" y="{n.y - 4:.1f}" text-anchor="middle" class="node-title">{e(n.title)}</text>'
            f'<text x="{n.x + NODE_W / 2}" y="{n.y + 13:.1f}" text-anchor="middle" class="node-sub">'
            f'{e(n.subtitle)}</text></g>')


def _params(c: Component) -> str:
    return ", ".join(f"{k}={v}" for k, v in c.params.items()) or "defaults"


def _tooltip(c: Component) -> str:
    return f"{c.ref}: " + (json.dumps(c.params, sort_keys=True, default=str) if c.params else "defaults")


def _short(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + "…"
