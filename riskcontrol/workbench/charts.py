"""Small server-drawn SVG charts for the workbench's pages (no script runs in the page).

Every label is escaped; sizes are fixed so a chart reads the same in any browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

W, H, PAD = 640, 220, 36
COLORS = {"approve": "#2e7d32", "review": "#f9a825", "reject": "#c62828", "value": "#1565c0"}


def _svg(body: str, title: str, width: int = W, height: int = H) -> str:
    return (
        f'<svg class="chart" role="img" aria-label="{escape(title)}" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(title)}</title>{body}</svg>"
    )


def _text(x: float, y: float, s: str, anchor: str = "middle", size: int = 11) -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}">'
        f"{escape(str(s))}</text>"
    )


def stacked_bars(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], legend: dict[str, str]
) -> str:
    """One bar per label, stacked by series (e.g. decisions per day by outcome)."""
    n = max(len(labels), 1)
    totals = [sum(s[i] for s in series.values()) for i in range(len(labels))]
    top = max(totals, default=0) or 1
    plot_h, step = H - 2 * PAD, (W - 2 * PAD) / n
    parts = [_text(PAD - 4, PAD, f"{top:g}", "end"), _text(PAD - 4, H - PAD, "0", "end")]
    parts.append(f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#888"/>')
    for i, label in enumerate(labels):
        y = H - PAD
        for name, values in series.items():
            h = values[i] / top * plot_h
            if h > 0:
                parts.append(
                    f'<rect x="{PAD + i * step + 1:.1f}" y="{y - h:.1f}" '
                    f'width="{max(step - 2, 1):.1f}" height="{h:.1f}" '
                    f'fill="{COLORS.get(name, "#777")}"><title>{escape(label)} '
                    f"{escape(legend.get(name, name))}: {values[i]:g}</title></rect>"
                )
            y -= h
        if n <= 10 or i % max(n // 6, 1) == 0:
            parts.append(_text(PAD + (i + 0.5) * step, H - PAD + 14, label[-5:], size=10))
    for j, name in enumerate(series):
        x = PAD + j * 110
        parts.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{COLORS.get(name, "#777")}"/>'
        )
        parts.append(_text(x + 14, 15, legend.get(name, name), "start"))
    return _svg("".join(parts), title)


def histogram(
    title: str,
    values: Sequence[float],
    lo: float = 0.0,
    hi: float = 1.0,
    bins: int = 20,
    marks: dict[str, float] | None = None,
) -> str:
    """Counts of ``values`` in ``bins`` equal bins over [lo, hi]; ``marks`` are
    labelled vertical lines (e.g. the cut-offs)."""
    counts = [0] * bins
    for v in values:
        if v is None:
            continue
        i = min(int((v - lo) / (hi - lo) * bins), bins - 1)
        counts[max(i, 0)] += 1
    top = max(counts) or 1
    plot_h, step = H - 2 * PAD, (W - 2 * PAD) / bins
    parts = [
        f'<line x1="{PAD}" y1="{H - PAD}" x2="{W - PAD}" y2="{H - PAD}" stroke="#888"/>',
        _text(PAD - 4, PAD, str(top), "end"),
    ]
    for i, c in enumerate(counts):
        h = c / top * plot_h
        parts.append(
            f'<rect x="{PAD + i * step + 1:.1f}" y="{H - PAD - h:.1f}" width="{step - 2:.1f}" '
            f'height="{h:.1f}" fill="{COLORS["value"]}"><title>{lo + i * (hi - lo) / bins:.2f}'
            f"-{lo + (i + 1) * (hi - lo) / bins:.2f}: {c}</title></rect>"
        )
    for k in range(0, bins + 1, max(bins // 5, 1)):
        parts.append(_text(PAD + k * step, H - PAD + 14, f"{lo + k * (hi - lo) / bins:.2f}"))
    for label, x in (marks or {}).items():
        px = PAD + (x - lo) / (hi - lo) * (W - 2 * PAD)
        parts.append(
            f'<line x1="{px:.1f}" y1="{PAD - 8}" x2="{px:.1f}" y2="{H - PAD}" '
            'stroke="#c62828" stroke-dasharray="4 3"/>'
        )
        parts.append(_text(px + 3, PAD - 10, f"{label} {x:.3f}", "start", 10))
    return _svg("".join(parts), title)


def trend(
    title: str, points: Sequence[tuple[str, float]], lines: dict[str, float | None] | None = None
) -> str:
    """A value over dates, with labelled horizontal thresholds."""
    if not points:
        return _svg(_text(W / 2, H / 2, "-"), title)
    levels = [v for _, v in points] + [v for v in (lines or {}).values() if v is not None]
    lo, hi = min(levels), max(levels)
    if hi == lo:
        lo, hi = lo - 1, hi + 1
    pad = (hi - lo) * 0.1
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return H - PAD - (v - lo) / (hi - lo) * (H - 2 * PAD)

    n = len(points)

    def x(i: int) -> float:
        return PAD + (i / max(n - 1, 1)) * (W - 2 * PAD)

    path = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, (_, v) in enumerate(points))
    parts = [
        f'<polyline fill="none" stroke="{COLORS["value"]}" stroke-width="2" points="{path}"/>',
        _text(PAD - 4, y(hi - pad), f"{hi - pad:.4g}", "end", 10),
        _text(PAD - 4, y(lo + pad), f"{lo + pad:.4g}", "end", 10),
    ]
    for i, (day, v) in enumerate(points):
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="3" fill="{COLORS["value"]}">'
            f"<title>{escape(day)}: {v:.4g}</title></circle>"
        )
    for i in sorted({0, n - 1, n // 2}):
        parts.append(_text(x(i), H - PAD + 14, points[i][0], size=10))
    for label, level in (lines or {}).items():
        if level is None:
            continue
        parts.append(
            f'<line x1="{PAD}" y1="{y(level):.1f}" x2="{W - PAD}" y2="{y(level):.1f}" '
            'stroke="#c62828" stroke-dasharray="5 3"/>'
        )
        parts.append(_text(W - PAD, y(level) - 3, f"{label} {level:.4g}", "end", 10))
    return _svg("".join(parts), title)
