"""A report's charts, drawn on the server with matplotlib (no pyplot: thread-safe),
readable in Chinese: the CJK font is found on the system (Debian's fonts-wqy-microhei, or
Noto CJK, or ``HOTLINE_STATS_FONT_FILE``); without one the charts are still drawn, with
a logged warning, and Chinese labels show as boxes.

SVG for the page (text drawn as paths, so it reads the same in any browser), the same
figures into a PDF (:mod:`bot.stats.exports`)."""

from __future__ import annotations

import io
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

import structlog
from matplotlib import font_manager
from matplotlib.backends.backend_svg import FigureCanvasSVG
from matplotlib.figure import Figure

from bot.desk.i18n import code_text, translate

log = structlog.get_logger(__name__)

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
    "/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc",
)
COLOURS = ("#1d3b5a", "#4f81bd", "#9bbb59", "#c0504d", "#8064a2", "#f79646", "#4bacc6", "#7f6000")


@cache
def cjk_font(configured: str | None = None) -> str | None:
    """The family name of a CJK font matplotlib can use, registered once; None if none is found."""
    for candidate in ((configured,) if configured else ()) + FONT_CANDIDATES:
        path = Path(candidate)
        if path.is_file():
            font_manager.fontManager.addfont(str(path))
            name: str = font_manager.FontProperties(fname=str(path)).get_name()
            return name
    log.warning("stats.no_cjk_font", tried=list(FONT_CANDIDATES),
                hint="install fonts-wqy-microhei or set HOTLINE_STATS_FONT_FILE; Chinese shows as boxes")
    return None


def font_path(configured: str | None = None) -> str | None:
    for candidate in ((configured,) if configured else ()) + FONT_CANDIDATES:
        if Path(candidate).is_file():
            return candidate
    return None


def _style(fig: Figure, font: str | None) -> dict[str, Any]:
    family = cjk_font(font)
    return {"fontfamily": family} if family else {}


Chart = Callable[[dict[str, Any], str, str | None], Figure]


def _bars(title: str, rows: list[list[Any]], kind: str | None, lang: str, font: str | None, *,
          horizontal: bool = False, width: float = 8.0) -> Figure:
    """One series: [[key, n]] (or [[key, name, n]]) as bars, labelled with the codes' words."""
    fig = Figure(figsize=(width, 3.6 if not horizontal else max(2.4, 0.35 * len(rows) + 1.2)), dpi=100)
    # Fixed margins: matplotlib's layout engines cost more than the drawing itself.
    fig.subplots_adjust(left=0.22 if horizontal else 0.07, right=0.98, top=0.88, bottom=0.22)
    text = _style(fig, font)
    ax = fig.add_subplot()
    labels = [_label(row, kind, lang) for row in rows]
    values = [row[-1] for row in rows]
    if horizontal:
        ax.barh(range(len(values)), values, color=COLOURS[1])
        ax.set_yticks(range(len(values)), labels, **text)
        ax.invert_yaxis()
    else:
        ax.bar(range(len(values)), values, color=COLOURS[1])
        # At most ~16 labels (a year's days would be 365 ticks: unreadable, and each costs time).
        step = max(1, -(-len(values) // 16))
        where = list(range(0, len(values), step))
        crowded = len(where) > 8 and max((len(lb) for lb in labels), default=0) > 3
        ax.set_xticks(where, [labels[i] for i in where], rotation=30 if crowded else 0,
                      ha="right" if crowded else "center", **text)
    ax.set_title(translate(title, lang), **text)
    for tick in ax.get_xticklabels() + ax.get_yticklabels():
        if text:
            tick.set_fontfamily(text["fontfamily"])
    return fig


def _label(row: list[Any], kind: str | None, lang: str) -> str:
    if len(row) == 3 and row[1]:  # an exchange: its name
        return str(row[1])
    return code_text(kind, row[0], lang) if kind else str(row[0])


def _grouped(title: str, groups: list[str], series: dict[str, list[float]], kind: str | None, lang: str,
             font: str | None, *, stacked: bool = False) -> Figure:
    fig = Figure(figsize=(8.0, 3.6), dpi=100)
    fig.subplots_adjust(left=0.07, right=0.98, top=0.88, bottom=0.12)
    text = _style(fig, font)
    ax = fig.add_subplot()
    count = max(1, len(series))
    width = 0.8 if stacked else 0.8 / count
    bottom = [0.0] * len(groups)
    for i, (name, values) in enumerate(series.items()):
        xs = [g + (0 if stacked else (i - (count - 1) / 2) * width) for g in range(len(groups))]
        ax.bar(xs, values, width, bottom=bottom if stacked else None, color=COLOURS[i % len(COLOURS)],
               label=code_text(kind, name, lang) if kind else translate(name, lang))
        if stacked:
            bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    ax.set_xticks(range(len(groups)), groups, **text)
    ax.set_title(translate(title, lang), **text)
    ax.legend(fontsize="small", prop={"family": text["fontfamily"]} if text else None)
    return fig


def volume_by_day(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    rows = [[d[5:], n] for d, n in f["volume"]["by_day"]]
    return _bars("Fault reports by day", rows, None, lang, font)


def volume_by_symptom(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    return _bars("Fault reports by symptom", f["volume"]["by_symptom"], "stats_symptom", lang, font, horizontal=True)


def volume_by_hour(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    return _bars("Fault reports by hour of day", f["volume"]["by_hour"], None, lang, font)


def volume_by_weekday(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    return _bars("Fault reports by day of week", f["volume"]["by_weekday"], "stats_weekday", lang, font)


def volume_by_branch(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    return _bars("Fault reports by branch", f["volume"]["by_branch"], "stats_branch", lang, font, horizontal=True)


def handling_by_channel(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    table = f["handling"]["channel_x_handled_by"]
    channels = [c for c in table if sum(table[c].values())] or list(table)
    handled = ("machine", "indirect", "person", "none")
    series = {h: [float(table[c].get(h, 0)) for c in channels] for h in handled}
    return _grouped("Contacts by channel and who handled them", [code_text("stats_channel", c, lang)
                                                                 for c in channels],
                    series, "stats_handled_by", lang, font, stacked=True)


def handling_funnel(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    rows = [row for row in f["handling"]["by_settled_at"] if row[1]]
    return _bars("Where contacts were settled (step)", rows, "stats_step", lang, font)


def handling_wait(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    h = f["handling"]
    buckets = [row[0] for row in h["answered_by_wait"]]
    series = {"answered": [float(r[1]) for r in h["answered_by_wait"]],
              "abandoned": [float(r[1]) for r in h["abandoned_by_wait"]]}
    return _grouped("Wait for a seat (J1, seconds)", buckets, series, "stats_result", lang, font)


def centres(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    rows = f["satisfaction"]["by_centre"]
    names = [row["name"] or row["centre"] for row in rows] or ["—"]
    keys = ("dispatches", "receipts_on_time", "receipts_late", "returns", "chases", "warnings", "violations",
            "second_dispatches")
    series = {k: [float(row.get(k, 0)) for row in rows] or [0.0] for k in keys
              if k != "second_dispatches" or "surveys" in f["satisfaction"]}  # a version-1 snapshot has none
    return _grouped("Measurement centres", names, series, "stats_figure", lang, font)


def satisfaction_ratings(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    """U4: how the reporters rated the attitude and the quality of the service, 1 … 5."""
    surveys = f["satisfaction"]["surveys"]
    series = {"Service attitude": [float(n) for _k, n in surveys["attitude"]],
              "Service quality": [float(n) for _k, n in surveys["quality"]]}
    groups = [code_text("stats_rating", k, lang) for k, _n in surveys["attitude"]]
    return _grouped("Survey ratings (1 very dissatisfied … 5 very satisfied)", groups, series, None, lang, font)


def surveys_by_centre(f: dict[str, Any], lang: str, font: str | None) -> Figure:
    """U3: the surveys each centre's repairs had, by how they ended."""
    rows = f["satisfaction"]["by_centre"]
    names = [row["name"] or row["centre"] for row in rows] or ["—"]
    keys = ("surveys_answered", "surveys_refused", "surveys_unreachable", "surveys_no_contact")
    series = {k: [float(row.get(k, 0)) for row in rows] or [0.0] for k in keys}
    return _grouped("Surveys by measurement centre", names, series, "stats_figure", lang, font, stacked=True)


CHARTS: dict[str, Chart] = {
    "volume_by_day": volume_by_day, "volume_by_symptom": volume_by_symptom, "volume_by_hour": volume_by_hour,
    "volume_by_weekday": volume_by_weekday, "volume_by_branch": volume_by_branch,
    "handling_by_channel": handling_by_channel, "handling_funnel": handling_funnel,
    "handling_wait": handling_wait, "centres": centres, "satisfaction_ratings": satisfaction_ratings,
    "surveys_by_centre": surveys_by_centre,
}
# Charts of figures a version-1 snapshot (a report frozen before the surveys were counted) lacks.
SURVEY_CHARTS = ("satisfaction_ratings", "surveys_by_centre")


def charts_of(figures: dict[str, Any]) -> dict[str, Chart]:
    """The charts a snapshot has the figures for (an old one: without the surveys')."""
    if "surveys" in figures.get("satisfaction", {}):
        return CHARTS
    return {name: chart for name, chart in CHARTS.items() if name not in SURVEY_CHARTS}


def svg(fig: Figure) -> str:
    """The figure as an inline SVG element (no XML prolog); text as paths."""
    buf = io.StringIO()
    FigureCanvasSVG(fig)
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg"):]


def all_svgs(figures: dict[str, Any], lang: str, font: str | None = None) -> dict[str, str]:
    return {name: svg(chart(figures, lang, font)) for name, chart in charts_of(figures).items()}
