"""A report's exports: XLSX (openpyxl: one sheet per kind of figure) and PDF (matplotlib's
PdfPages: a title page with the main numbers, then the charts), both in Chinese by default,
with the CJK font embedded in the PDF."""

from __future__ import annotations

import io
from datetime import UTC
from typing import Any

from matplotlib.backends.backend_pdf import FigureCanvasPdf, PdfPages
from matplotlib.figure import Figure
from openpyxl import Workbook
from openpyxl.styles import Font

from bot.desk.i18n import code_text, translate
from bot.stats.charts import _style, charts_of
from bot.store.stats import StatsReport

# (figure key in "volume"/"handling", code kind of its keys, English title)
VOLUME_TABLES = (("by_kind", "stats_kind", "By kind"), ("by_symptom", "stats_symptom", "By symptom"),
                 ("by_fault_class", "stats_fault_class", "By fault class"),
                 ("by_channel", "stats_channel", "By channel"), ("by_branch", "stats_branch", "By branch"),
                 ("by_exchange", None, "By exchange"), ("by_hour", None, "By hour of day"),
                 ("by_weekday", "stats_weekday", "By day of week"), ("by_day", None, "By day"))
HANDLING_TABLES = (("by_channel", "stats_channel", "Contacts by channel"),
                   ("by_handled_by", "stats_handled_by", "Contacts by who handled them"),
                   ("by_settled_at", "stats_step", "Contacts by the step where they were settled"),
                   ("by_customer_type", "stats_customer_type", "Contacts by customer type"),
                   ("handoff_reasons", "stats_reason", "Handoffs by reason"),
                   ("handoff_results", "stats_result", "Handoffs by how they ended"),
                   ("abandoned_by_step", "stats_step", "Abandoned contacts by step"),
                   ("answered_by_wait", None, "Answered handoffs by wait (s)"),
                   ("abandoned_by_wait", None, "Abandoned handoffs by wait (s)"))
HANDLING_NUMBERS = ("contacts", "machine_rate", "contained", "containment_rate", "handed_off", "handoff_rate",
                    "handoffs", "abandoned", "abandonment_rate", "average_answer_wait_s", "repeat_reports",
                    "repeat_report_rate")
CENTRE_COLUMNS = ("dispatches", "receipts", "receipts_on_time", "receipts_late", "on_time_rate", "returns",
                  "chases", "reopened", "average_repair_hours", "warnings", "alarms", "violations",
                  "violation_late_hours")
# U3–U5 per centre (a version-2 snapshot on: see bot/stats/figures.py FIGURES_VERSION).
SURVEY_COLUMNS = ("second_dispatches", "surveys_due", "surveys_answered", "surveys_refused", "surveys_unreachable",
                  "surveys_no_contact", "survey_response_rate", "satisfaction_attitude", "satisfaction_quality")
# (key in satisfaction.surveys, code kind of its keys, English title)
SURVEY_TABLES = (("attitude", "stats_rating", "Satisfaction with attitude: ratings"),
                 ("quality", "stats_rating", "Satisfaction with quality: ratings"),
                 ("by_result", "survey_result", "Answered surveys by result"),
                 ("by_state", "survey_state", "Finished surveys by how they ended"),
                 ("second_dispatches_by_why", "second_dispatch_why", "Second dispatches by why"))
# On the PDF's title page and in the summary: the main survey figures (totals).
SURVEY_NUMBERS = ("second_dispatches", "surveys_due", "surveys_answered", "survey_response_rate",
                  "satisfaction_attitude", "satisfaction_quality")


def title(report: StatsReport, lang: str) -> str:
    last = report.figures.get("period", {}).get("last", report.period_end)
    version = f" v{report.version}" if report.version > 1 else ""
    return (f"{code_text('stats_period', report.kind, lang)} {translate('report', lang)} "
            f"{report.period_start} … {last}{version}")


def _state_line(report: StatsReport, lang: str) -> str:
    state = code_text("stats_state", report.state, lang)
    who = ""
    if report.decided_by and report.decided_at and report.state == "approved":
        who = f" · {translate('approved by', lang)} {report.decided_by} {report.decided_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"
    return f"{translate('State', lang)}: {state}{who}"


def _fmt(value: Any) -> Any:
    if isinstance(value, float) and 0 <= value <= 1:
        return f"{value:.1%}"
    return "—" if value is None else value


def xlsx(report: StatsReport, lang: str = "zh") -> bytes:
    f = report.figures
    wb = Workbook()
    summary = wb.active
    assert summary is not None
    summary.title = translate("Summary", lang)[:31]
    bold = Font(bold=True)
    summary.append([title(report, lang)])
    summary["A1"].font = bold
    summary.append([_state_line(report, lang)])
    summary.append([translate("Time zone", lang), f.get("timezone", report.timezone)])
    summary.append([translate("Computed at", lang), f.get("computed_at", "")])
    if report.comment:
        summary.append([translate("Statistician's comment", lang), report.comment])
    summary.append([])
    summary.append([translate("Fault reports", lang), f["volume"]["total"]])
    for key in HANDLING_NUMBERS:
        summary.append([code_text("stats_figure", key, lang), f["handling"][key]])
    if "surveys" in f["satisfaction"]:
        for key in SURVEY_NUMBERS:
            summary.append([code_text("stats_figure", key, lang), f["satisfaction"]["totals"][key]])

    volume = wb.create_sheet(translate("Volume (T2)", lang)[:31])
    for key, kind, heading in VOLUME_TABLES:
        volume.append([translate(heading, lang)])
        volume.cell(volume.max_row, 1).font = bold
        for row in f["volume"][key]:
            label = code_text(kind, row[0], lang) if kind else row[0]
            volume.append([label, *row[1:]])
        volume.append([])

    handling = wb.create_sheet(translate("Handling (T3)", lang)[:31])
    for key in HANDLING_NUMBERS:
        handling.append([code_text("stats_figure", key, lang), f["handling"][key]])
    handling.append([])
    for key, kind, heading in HANDLING_TABLES:
        handling.append([translate(heading, lang)])
        handling.cell(handling.max_row, 1).font = bold
        for row in f["handling"][key]:
            handling.append([code_text(kind, row[0], lang) if kind else row[0], row[-1]])
        handling.append([])

    satisfaction = wb.create_sheet(translate("Satisfaction (T4)", lang)[:31])
    satisfaction.append([translate("Measurement centre", lang)]
                        + [code_text("stats_figure", c, lang) for c in CENTRE_COLUMNS])
    for row in f["satisfaction"]["by_centre"]:
        satisfaction.append([row["name"] or row["centre"]] + [row[c] for c in CENTRE_COLUMNS])
    totals = f["satisfaction"]["totals"]
    satisfaction.append([translate("Total", lang)] + [totals.get(c) for c in CENTRE_COLUMNS])
    satisfaction.append([])
    surveys = f["satisfaction"].get("surveys")
    if surveys is None:  # a version-1 snapshot: frozen before the surveys were counted
        satisfaction.append([translate("Not recorded yet", lang)]
                            + [code_text("stats_figure", k, lang) for k in f["satisfaction"]["not_yet_recorded"]])
    else:
        satisfaction.append([translate("Surveys (U3–U5)", lang)])
        satisfaction.cell(satisfaction.max_row, 1).font = bold
        satisfaction.append([translate("Measurement centre", lang)]
                            + [code_text("stats_figure", c, lang) for c in SURVEY_COLUMNS])
        for row in f["satisfaction"]["by_centre"]:
            satisfaction.append([row["name"] or row["centre"]] + [row[c] for c in SURVEY_COLUMNS])
        satisfaction.append([translate("Total", lang)] + [totals.get(c) for c in SURVEY_COLUMNS])
        satisfaction.append([f"{translate('Satisfied from rating', lang)}", surveys["satisfied_from"]])
        for key, kind, heading in SURVEY_TABLES:
            satisfaction.append([])
            satisfaction.append([translate(heading, lang)])
            satisfaction.cell(satisfaction.max_row, 1).font = bold
            for k, n in surveys[key]:
                satisfaction.append([code_text(kind, k, lang), n])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def pdf(report: StatsReport, lang: str = "zh", font: str | None = None) -> bytes:
    """A4 landscape pages: the title and main numbers, then one chart per page."""
    buf = io.BytesIO()
    f = report.figures
    with PdfPages(buf, metadata={"Title": title(report, "en"), "Creator": "hotline"}) as pages:
        cover = Figure(figsize=(11.69, 8.27))
        FigureCanvasPdf(cover)
        text = _style(cover, font)
        cover.text(0.06, 0.92, title(report, lang), fontsize=20, **text)
        cover.text(0.06, 0.87, _state_line(report, lang), fontsize=11, **text)
        lines = [f"{translate('Fault reports', lang)}: {f['volume']['total']}"]
        lines += [f"{code_text('stats_figure', k, lang)}: {_fmt(f['handling'][k])}" for k in HANDLING_NUMBERS]
        totals = f["satisfaction"]["totals"]
        lines += [f"{code_text('stats_figure', k, lang)}: {_fmt(totals.get(k))}"
                  for k in (*CENTRE_COLUMNS, *SURVEY_NUMBERS) if k in totals]
        for i, line in enumerate(lines):
            cover.text(0.06 + 0.45 * (i // 16), 0.80 - 0.045 * (i % 16), line, fontsize=11, **text)
        if report.comment:
            cover.text(0.06, 0.05, f"{translate('Statistician comment', lang)}: {report.comment[:300]}",
                       fontsize=10, wrap=True, **text)
        pages.savefig(cover)
        for chart in charts_of(f).values():
            fig = chart(f, lang, font)
            fig.set_size_inches(11.69, 8.27)
            FigureCanvasPdf(fig)
            pages.savefig(fig)
    return buf.getvalue()
