"""`newsbeam report`'s charts: matplotlib Figure objects (no pyplot state, so charts can be drawn in any thread)
from the numbers of pipeline.report_aggregate, and each figure as PNG bytes. Colours are Okabe-Ito (readable with
the common colour-vision deficiencies); a chart shows a bounded number of series, the rest summed as 'other'.
"""
from __future__ import annotations

import datetime as dt
import io
from collections import Counter
from typing import Callable

from .report_aggregate import (ENTITY_TYPE_NAMES, LANGUAGE_NAMES, PERIOD_HEADER, STANCE_LABELS, EntityStat,
                               StanceCell, fold_groups, next_period, period_label, period_range)
from .report_rows import plural

PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"]
OTHER_COLOUR = "#BBBBBB"
STANCE_COLOURS = {"favor": "#0072B2", "neutral": "#9A9A9A", "against": "#D55E00"}
DUP_COLOURS = {"exact": "#CC79A7", "near": "#E69F00"}
MAX_SOURCES_IN_CHART = 7
MAX_TARGETS_IN_CHART = 6
MAX_GROUPS_IN_CHART = 6  # sources or languages per stance panel, the rest summed as 'other'
DPI = 110


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _no_data(fig, message: str):
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=12, color="#555555", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _short(text: str, n: int = 38) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _date_axis(ax, periods: list[dt.date], period: str):
    import matplotlib.dates as mdates

    locator = mdates.AutoDateLocator(minticks=4, maxticks=10)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
    ax.set_xlim(periods[0] - dt.timedelta(days=1), next_period(periods[-1], period) + dt.timedelta(days=1))
    ax.grid(axis="y", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def _bar_width(period: str) -> float:
    return {"day": 0.85, "week": 6.0, "month": 26.0}[period]


def chart_articles(per_period: dict[dt.date, Counter], period: str):
    """Stacked bars: articles per period, one colour per source (the biggest sources; the rest as 'other')."""
    fig = _figure(11, 5.2)
    if not per_period:
        return _no_data(fig, "No articles in this output")
    ax = fig.add_subplot()
    totals_by_source = Counter()
    for c in per_period.values():
        totals_by_source.update(c)
    ranked = [s for s, _ in sorted(totals_by_source.items(), key=lambda kv: (-kv[1], kv[0]))]
    shown = ranked if len(ranked) <= MAX_SOURCES_IN_CHART + 1 else ranked[:MAX_SOURCES_IN_CHART]
    others = [s for s in ranked if s not in shown]
    periods = period_range(min(per_period), max(per_period), period)
    bottom = [0] * len(periods)
    series = [(s, [per_period.get(p, Counter())[s] for p in periods], PALETTE[i % len(PALETTE)])
              for i, s in enumerate(shown)]
    if others:
        series.append((f"other ({len(others)} sources)",
                       [sum(per_period.get(p, Counter())[s] for s in others) for p in periods], OTHER_COLOUR))
    for label, values, colour in series:
        ax.bar(periods, values, width=_bar_width(period), bottom=bottom, align="edge", color=colour,
               edgecolor="white", linewidth=0.5, label=f"{_short(label, 45)} ({sum(values)})")
        bottom = [b + v for b, v in zip(bottom, values)]
    for p, total in zip(periods, bottom):
        if total:
            ax.annotate(str(total), (p + dt.timedelta(days=_bar_width(period) / 2), total), ha="center",
                        va="bottom", fontsize=8, xytext=(0, 2), textcoords="offset points")
    _date_axis(ax, periods, period)
    ax.set_ylim(0, max(bottom) * 1.15 + 0.5)
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Articles per {period}, by source", fontsize=13, loc="left")
    ax.set_xlabel(f"published ({PERIOD_HEADER[period]})")
    ax.set_ylabel("articles")
    fig.legend(loc="outside lower center", ncols=2, fontsize=8.5, frameon=False, title="source (articles)",
               title_fontsize=9)
    return fig


def _style_count_bars(ax, xmax: float, title: str, xlabel: str, ylabel: str) -> None:
    """The shared look of the horizontal count-bar charts: integer x axis, left title, light vertical grid."""
    ax.set_xlim(0, xmax)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(title, fontsize=13, loc="left")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", color="#dddddd", linewidth=0.8)
    ax.set_axisbelow(True)


def chart_languages(rows: list[tuple[str, int, float]]):
    fig = _figure(11, max(2.2, 0.32 * len(rows) + 1.2))
    if not rows:
        return _no_data(fig, "No articles in this output")
    ax = fig.add_subplot()
    total = sum(r[1] for r in rows)
    labels = [f"{c} ({LANGUAGE_NAMES[c]})" if c in LANGUAGE_NAMES else c for c, _, _ in rows]
    bars = ax.barh(labels[::-1], [r[1] for r in rows][::-1], color=PALETTE[0], height=0.6)
    for bar, (_, n, _) in zip(bars, rows[::-1]):
        ax.annotate(f"{n} ({100 * n / total:.0f}%)", (bar.get_width(), bar.get_y() + bar.get_height() / 2),
                    xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    _style_count_bars(ax, max(r[1] for r in rows) * 1.2, "Articles by detected language", "articles", "language")
    return fig


def chart_entities(stats: list[EntityStat], periods: list[dt.date], period: str):
    """Heatmap: top entities of one type (rows) x periods (columns), cell = articles mentioning it."""
    etype = stats[0].type
    fig = _figure(11, 0.36 * len(stats) + 2.0)
    ax = fig.add_subplot()
    index = {p: i for i, p in enumerate(periods)}
    grid = [[0] * len(periods) for _ in stats]
    for r, s in enumerate(stats):
        for p, n in s.by_period.items():
            grid[r][index[p]] = n
    vmax = max(max(row) for row in grid) or 1
    im = ax.imshow(grid, aspect="auto", cmap="Blues", vmin=0, vmax=vmax, interpolation="nearest")
    for r, row in enumerate(grid):
        for c, n in enumerate(row):
            if n:
                ax.text(c, r, str(n), ha="center", va="center", fontsize=8,
                        color="white" if n > 0.6 * vmax else "#1a1a1a")
    ax.set_yticks(range(len(stats)), [f"{_short(s.text, 30)} ({s.articles})" for s in stats], fontsize=9)
    step = max(1, -(-len(periods) // 24))
    ticks = list(range(0, len(periods), step))
    ax.set_xticks(ticks, [period_label(periods[i], period) for i in ticks], rotation=60, ha="right",
                  rotation_mode="anchor", fontsize=8)
    ax.set_xticks([i - 0.5 for i in range(len(periods) + 1)], minor=True)
    ax.set_yticks([i - 0.5 for i in range(len(stats) + 1)], minor=True)
    ax.grid(which="minor", color="white", linewidth=1)
    ax.tick_params(which="minor", length=0)
    ax.set_title(f"Top {ENTITY_TYPE_NAMES[etype]} ({etype}): articles mentioning each, per {period}", fontsize=13,
                 loc="left")
    ax.set_xlabel(f"published ({PERIOD_HEADER[period]})")
    ax.set_ylabel("entity (articles in total)")
    cbar = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
    cbar.set_label("articles")
    cbar.ax.yaxis.get_major_locator().set_params(integer=True)
    return fig


def chart_stance(per_target: dict[str, dict[dt.date, StanceCell]], periods: list[dt.date], period: str):
    """One panel per target: stacked bars of favor / neutral / against articles per period (same time axis as
    the articles chart)."""
    targets = [t for t, cells in per_target.items() if any(c.labelled for c in cells.values())]
    targets = targets[:MAX_TARGETS_IN_CHART]
    fig = _figure(11, 2.3 * max(1, len(targets)) + 1.2)
    if not targets:
        return _no_data(fig, "No article mentions a stance target")
    axes = fig.subplots(len(targets), 1, sharex=True, squeeze=False)[:, 0]
    for ax, target in zip(axes, targets):
        cells = per_target[target]
        bottom = [0] * len(periods)
        for label in STANCE_LABELS:
            values = [getattr(cells.get(p, StanceCell()), label) for p in periods]
            ax.bar(periods, values, width=_bar_width(period), bottom=bottom, align="edge",
                   color=STANCE_COLOURS[label], edgecolor="white", linewidth=0.5, label=label)
            bottom = [b + v for b, v in zip(bottom, values)]
        n = sum(c.labelled for c in cells.values())
        ax.set_title(f"Stance toward {target} ({plural(n, 'article')} that mention it)", fontsize=11, loc="left")
        ax.set_ylabel("articles")
        ax.set_ylim(0, max(bottom) * 1.15 + 0.5)
        ax.yaxis.get_major_locator().set_params(integer=True)
        _date_axis(ax, periods, period)
    axes[-1].set_xlabel(f"published ({PERIOD_HEADER[period]})")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncols=3, frameon=False, title="article-level label")
    fig.suptitle(f"Stance per target, per {period}", fontsize=13, x=0.01, ha="left")
    return fig


def chart_stance_by(per_target: dict[str, dict[str, dict[dt.date, StanceCell]]], periods: list[dt.date],
                    period: str, noun: str, top: int = MAX_GROUPS_IN_CHART, name: Callable[[str], str] = str):
    """One panel per target: the mean net stance (P(favor) − P(against)) per period of each group of articles
    (`noun`: source, language), the `top` groups with the most labelled articles on that target and the rest
    summed as 'other' (report_aggregate.fold_groups). A hollow marker is a point that includes zero-shot labels
    (stance quality not measured in the article's language); a dashed line, a group whose labels all are."""
    targets = [t for t, groups in per_target.items()
               if any(c.labelled for cells in groups.values() for c in cells.values())][:MAX_TARGETS_IN_CHART]
    fig = _figure(11, 2.6 * max(1, len(targets)) + 1.0)
    if not targets:
        return _no_data(fig, "No article mentions a stance target")
    folded = {t: fold_groups(per_target[t], top, noun) for t in targets}
    weight: Counter = Counter()  # one colour per group on every panel, the most labelled groups first
    for t, groups in folded.items():
        weight.update({g: sum(c.labelled for c in cells.values()) for g, cells in groups.items()
                       if g in per_target[t]})
    colours = [c for c in PALETTE if c != "#F0E442"]  # yellow is too light for a line
    colour_of = {g: colours[i % len(colours)]
                 for i, (g, _) in enumerate(sorted(weight.items(), key=lambda kv: (-kv[1], kv[0])))}
    axes = fig.subplots(len(targets), 1, sharex=True, squeeze=False)[:, 0]
    half = dt.timedelta(days=_bar_width(period) / 2)
    for ax, target in zip(axes, targets):
        for group, cells in folded[target].items():
            other = group not in per_target[target]  # the 'other (k ...)' sum
            colour = OTHER_COLOUR if other else colour_of[group]
            points = [(p + half, c.net, c.zero_shot > 0) for p, c in cells.items() if c.labelled]
            n, zero = sum(c.labelled for c in cells.values()), sum(c.zero_shot for c in cells.values())
            label = name(group) if other else _short(name(group), 34)
            ax.plot([x for x, _, _ in points], [y for _, y, _ in points], color=colour, linewidth=1.5,
                    linestyle="--" if zero == n else "-", marker="o", markersize=5.5, markeredgecolor=colour,
                    markerfacecolor=colour, label=f"{label} ({n}{f', {zero} zero-shot' if zero else ''})")
            hollow = [(x, y) for x, y, z in points if z]
            if hollow:
                ax.plot([x for x, _ in hollow], [y for _, y in hollow], linestyle="none", marker="o",
                        markersize=5.5, markeredgecolor=colour, markerfacecolor="white")
        ax.axhline(0, color="#888888", linewidth=0.8)
        ax.set_ylim(-1.1, 1.1)
        ax.set_ylabel("net stance")
        ax.set_title(f"{target}: mean net stance per {period}, by {noun}", fontsize=11, loc="left")
        _date_axis(ax, periods, period)
        ax.legend(loc="upper left", bbox_to_anchor=(1.005, 1.0), fontsize=8, frameon=False,
                  title=f"{noun} (labelled articles)", title_fontsize=8.5)
    axes[-1].set_xlabel(f"published ({PERIOD_HEADER[period]}); hollow marker: includes zero-shot labels")
    fig.suptitle(f"Stance per target by {noun}, per {period}: P(favor) − P(against), −1 to +1", fontsize=13,
                 x=0.01, ha="left")
    return fig


def chart_duplicates(rows: list[tuple]):
    fig = _figure(11, max(2.4, 0.45 * len(rows) + 1.6))
    if not rows:
        return _no_data(fig, "No duplicates found in this output")
    ax = fig.add_subplot()
    rows = rows[::-1]
    labels = [_short(r[0], 45) for r in rows]
    exact = [r[1] for r in rows]
    near = [r[2] for r in rows]
    ax.barh(labels, exact, color=DUP_COLOURS["exact"], height=0.6, label="exact (same normalised text)")
    ax.barh(labels, near, left=exact, color=DUP_COLOURS["near"], height=0.6, label="near (MinHash similarity)")
    for y, (e, n) in enumerate(zip(exact, near)):
        ax.annotate(str(e + n), (e + n, y), xytext=(4, 0), textcoords="offset points", va="center", fontsize=9)
    _style_count_bars(ax, max(e + n for e, n in zip(exact, near)) * 1.2 + 0.2,
                      "Duplicates found, by the duplicate's source", "duplicate records", "source")
    fig.legend(loc="outside lower center", ncols=2, frameon=False)
    return fig


def figure_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, facecolor="white", metadata={"Software": None})
    return buf.getvalue()
