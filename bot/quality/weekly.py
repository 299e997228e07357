"""Q8: the weekly QA analysis report — every Monday, for the week before (Monday to
Sunday, local days): scores by post and by person, the weak points (the scorecard items
that lost the most), the violations, and the trend over the four weeks before; to the
deputy managers, who approve it for the provincial centre.

It is a report kind (``qa_weekly``) on the statistics' report machinery
(:mod:`bot.stats.reports`): generated as a draft with its figures frozen in a snapshot,
refreshed by an inspector while a draft, submitted (numbers frozen), approved or sent
back by a deputy, corrected as a new version — who and when kept at every step. Its page
is ``/desk/quality/reports/{id}``; its PDF and XLSX are made here.
"""

from __future__ import annotations

import io
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

from matplotlib.backends.backend_pdf import FigureCanvasPdf, PdfPages
from matplotlib.figure import Figure
from openpyxl import Workbook
from openpyxl.styles import Font
from sqlmodel import Session, col, func, select

from bot.desk.i18n import code_text, translate
from bot.stats import reports
from bot.stats.charts import COLOURS, _style
from bot.stats.figures import Period
from bot.stats.reports import Options, OtherKind, Who
from bot.stats.sqltime import day_start_utc, local_day
from bot.store.errors import ServiceError
from bot.store.models import utcnow
from bot.store.quality import QaHandoffFlag, QaSample, QaScore, QaViolation, ScoreState
from bot.store.stats import StatsReport

KIND = "qa_weekly"
INSPECTOR, ADMIN = "inspector", "admin"
TREND_WEEKS = 4
WEAK_POINTS = 10


def week_starting(start: date) -> Period:
    if start.isoweekday() != 1:
        raise ServiceError(f"a weekly QA report starts on a Monday; {start} is not one", code="invalid_period")
    return Period(start, start + timedelta(days=7))


def last_week(today: date) -> Period:
    monday = today - timedelta(days=today.isoweekday() - 1)
    return week_starting(monday - timedelta(days=7))


def _bounds(period: Period, options: Options) -> tuple[datetime, datetime]:
    return day_start_utc(period.start, options.tz), day_start_utc(period.end, options.tz)


def _avg(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def _violation_at() -> Any:
    """A violation's week is its work's (the time it was recorded when there is no work)."""
    return func.coalesce(col(QaViolation.work_at), col(QaViolation.at))


def figures(s: Session, period: Period, options: Options, now: datetime) -> dict[str, Any]:
    """The week's QA figures from the store: the week's work — its scores and the
    violations found in it, whenever they were recorded."""
    start, end = _bounds(period, options)
    scores = list(s.exec(select(QaScore).where(QaScore.state == ScoreState.submitted.value,
                                               col(QaScore.work_at) >= start, col(QaScore.work_at) < end)))
    samples: dict[str, int] = {str(post): int(n) for post, n in s.exec(
        select(QaSample.post, func.count()).where(col(QaSample.work_at) >= start, col(QaSample.work_at) < end)
        .group_by(col(QaSample.post)))}
    violations = list(s.exec(select(QaViolation).where(_violation_at() >= start, _violation_at() < end,
                                                       col(QaViolation.withdrawn_at).is_(None))
                             .order_by(_violation_at(), col(QaViolation.id))))
    flags: dict[str, int] = {str(r): int(n) for r, n in s.exec(
        select(QaHandoffFlag.reason, func.count()).where(col(QaHandoffFlag.detected_at) >= start,
                                                        col(QaHandoffFlag.detected_at) < end)
        .group_by(col(QaHandoffFlag.reason)))}

    by_post: dict[str, list[QaScore]] = defaultdict(list)
    by_person: dict[tuple[str, str], list[QaScore]] = defaultdict(list)
    for sc in scores:
        by_post[sc.post].append(sc)
        by_person[(sc.person or "", sc.post)].append(sc)
    v_post: dict[str, int] = defaultdict(int)
    v_person: dict[tuple[str, str], int] = defaultdict(int)
    for v in violations:
        v_post[v.post] += 1
        v_person[(v.person or "", v.post)] += 1

    posts = sorted(set(by_post) | set(samples) | set(v_post))
    post_rows = [{"post": p, "samples": samples.get(p, 0), "scored": len(by_post[p]),
                  "average": _avg([x.percent for x in by_post[p]]),
                  "pass_rate": _rate(sum(1 for x in by_post[p] if x.passed), len(by_post[p])),
                  "instant_fails": sum(1 for x in by_post[p] if x.instant_fail), "violations": v_post.get(p, 0)}
                 for p in posts]
    people = sorted(set(by_person) | set(v_person))
    person_rows = [{"person": who or None, "post": post, "scored": len(by_person[(who, post)]),
                    "average": _avg([x.percent for x in by_person[(who, post)]]),
                    "failed": sum(1 for x in by_person[(who, post)] if not x.passed),
                    "violations": v_person.get((who, post), 0)} for who, post in people]
    person_rows.sort(key=lambda r: (r["average"] if r["average"] is not None else 101, r["person"] or ""))

    # Weak points: per post and item, the share of the item's weight given on average; instant fails found.
    lost: dict[tuple[str, str], list[float]] = defaultdict(list)
    found: dict[tuple[str, str], int] = defaultdict(int)
    names: dict[tuple[str, str], tuple[str, str]] = {}
    for sc in scores:
        for it in sc.items:
            names.setdefault((sc.post, it["id"]), (str(it.get("zh") or it["id"]), str(it.get("en") or it["id"])))
            if it.get("instant_fail"):
                if it.get("found"):
                    found[(sc.post, it["id"])] += 1
            elif it.get("weight"):
                lost[(sc.post, it["id"])].append(float(it.get("points", 0)) / float(it["weight"]))
    weak = sorted(({"post": p, "item": i, "zh": names.get((p, i), (i, i))[0], "en": names.get((p, i), (i, i))[1],
                    "share": round(sum(v) / len(v), 3), "scored": len(v)} for (p, i), v in lost.items()),
                  key=lambda r: (r["share"], r["post"], r["item"]))[:WEAK_POINTS]
    fails = [{"post": p, "item": i, "zh": names.get((p, i), (i, i))[0], "en": names.get((p, i), (i, i))[1],
              "found": n} for (p, i), n in sorted(found.items())]

    # Trend: this week and the weeks before, every post together and per post.
    trend = []
    for back in range(TREND_WEEKS - 1, -1, -1):
        w = Period(period.start - timedelta(days=7 * back), period.end - timedelta(days=7 * back))
        ws, we = _bounds(w, options)
        rows = list(s.exec(select(QaScore.post, QaScore.percent).where(
            QaScore.state == ScoreState.submitted.value, col(QaScore.work_at) >= ws, col(QaScore.work_at) < we)))
        per_post: dict[str, list[float]] = defaultdict(list)
        for post, pct in rows:
            per_post[str(post)].append(float(pct))
        nv = s.exec(select(func.count()).select_from(QaViolation).where(
            _violation_at() >= ws, _violation_at() < we, col(QaViolation.withdrawn_at).is_(None))).one()
        trend.append({"week": w.start.isoformat(), "scored": len(rows), "average": _avg([float(p) for _, p in rows]),
                      "violations": int(nv), "by_post": {p: _avg(v) for p, v in sorted(per_post.items())}})

    return {
        "period": {"start": period.start.isoformat(), "last": (period.end - timedelta(days=1)).isoformat(),
                   "end": period.end.isoformat()},
        "timezone": options.tz.key, "computed_at": now.astimezone(UTC).isoformat(),
        "totals": {"samples": sum(samples.values()), "scored": len(scores),
                   "average": _avg([x.percent for x in scores]),
                   "pass_rate": _rate(sum(1 for x in scores if x.passed), len(scores)),
                   "instant_fails": sum(1 for x in scores if x.instant_fail), "violations": len(violations),
                   "handoff_flags": sum(flags.values())},
        "by_post": post_rows, "by_person": person_rows, "weak_points": weak, "instant_fails": fails,
        "violations": [{"id": v.id, "person": v.person, "post": v.post, "rule": v.rule, "description": v.description,
                        "evidence": v.evidence, "at": v.at.astimezone(UTC).isoformat()} for v in violations],
        "handoff_flags": flags, "trend": trend,
    }


def generate_due(s: Session, options: Options, *, now: datetime | None = None) -> tuple[StatsReport, bool]:
    """The scheduled run (Q8): the report of the week before, if not made yet."""
    now = now or utcnow()
    week = last_week(local_day(now, options.tz))
    return reports.generate(s, KIND, week.start, options, reports.SCHEDULED, now=now)


def generate(s: Session, start: date, options: Options, who: Who, *,
             now: datetime | None = None) -> tuple[StatsReport, bool]:
    return reports.generate(s, KIND, start, options, who, now=now)


# ---------------------------------------------------------------- exports


def title(report: StatsReport, lang: str) -> str:
    last = report.figures.get("period", {}).get("last", report.period_end)
    version = f" v{report.version}" if report.version > 1 else ""
    return f"{translate('Weekly QA analysis report', lang)} {report.period_start} … {last}{version}"


def _pct(v: Any) -> str:
    if v is None:
        return "—"
    return f"{v:.1%}" if isinstance(v, float) and v <= 1 else f"{v}"


def _post(p: str | None, lang: str) -> str:
    return code_text("qa_post", p, lang) if p else "—"


def summary_lines(report: StatsReport, lang: str) -> list[str]:
    f = report.figures
    t = f["totals"]
    lines = [f"{translate('State', lang)}: {code_text('stats_state', report.state, lang)}"
             + (f" · {translate('approved by', lang)} {report.decided_by}" if report.state == "approved" else ""),
             f"{translate('Samples drawn', lang)}: {t['samples']}", f"{translate('Scored', lang)}: {t['scored']}",
             f"{translate('Average score', lang)}: {_pct(t['average'])}%",
             f"{translate('Pass rate', lang)}: {_pct(t['pass_rate'])}",
             f"{translate('Instant fails', lang)}: {t['instant_fails']}",
             f"{translate('Violations counted', lang)}: {t['violations']}",
             f"{translate('Hand-offs flagged (Q6)', lang)}: {t['handoff_flags']}"]
    return lines


def pdf(report: StatsReport, lang: str = "zh", font: str | None = None) -> bytes:
    """A4 landscape: the title and totals with the weak points, then the scores by post
    and the trend as charts, then the people and the violations."""
    f = report.figures
    buf = io.BytesIO()
    with PdfPages(buf, metadata={"Title": title(report, "en"), "Creator": "hotline"}) as pages:
        cover = Figure(figsize=(11.69, 8.27))
        FigureCanvasPdf(cover)
        text = _style(cover, font)
        cover.text(0.06, 0.92, title(report, lang), fontsize=18, **text)
        for i, line in enumerate(summary_lines(report, lang)):
            cover.text(0.06, 0.84 - 0.045 * i, line, fontsize=11, **text)
        cover.text(0.52, 0.84, translate("Weak points", lang), fontsize=13, **text)
        for i, w in enumerate(f["weak_points"][:10]):
            name = w["zh"] if lang == "zh" else w["en"]
            cover.text(0.52, 0.79 - 0.04 * i, f"{_post(w['post'], lang)} · {name}: {w['share']:.0%}", fontsize=10,
                       **text)
        if report.comment:
            cover.text(0.06, 0.08, f"{translate('Comment', lang)}: {report.comment[:300]}", fontsize=10, wrap=True,
                       **text)
        pages.savefig(cover)

        charts = Figure(figsize=(11.69, 8.27))
        FigureCanvasPdf(charts)
        ax1, ax2 = charts.subplots(1, 2)
        rows = [r for r in f["by_post"] if r["average"] is not None]
        ax1.barh([_post(r["post"], lang) for r in rows], [r["average"] for r in rows], color=COLOURS[0])
        ax1.set_xlim(0, 100)
        ax1.set_title(translate("Average score by post", lang), **text)
        for label in ax1.get_yticklabels():
            label.set(**text)
        weeks = [w["week"][5:] for w in f["trend"]]
        ax2.plot(weeks, [w["average"] if w["average"] is not None else float("nan") for w in f["trend"]],
                 marker="o", color=COLOURS[1], label=translate("Average score", lang))
        ax2.set_ylim(0, 100)
        ax2.set_title(translate("Trend (weeks)", lang), **text)
        ax3 = ax2.twinx()
        ax3.bar(weeks, [w["violations"] for w in f["trend"]], alpha=0.3, color=COLOURS[3])
        ax3.set_ylabel(translate("Violations counted", lang), **text)
        charts.tight_layout()
        pages.savefig(charts)

        people = Figure(figsize=(11.69, 8.27))
        FigureCanvasPdf(people)
        ptext = _style(people, font)
        people.text(0.06, 0.94, translate("Scores by person", lang), fontsize=13, **ptext)
        for i, r in enumerate(f["by_person"][:24]):
            people.text(0.06, 0.89 - 0.033 * i,
                        f"{r['person'] or '—'} ({_post(r['post'], lang)}): {_pct(r['average'])}% · "
                        f"{translate('Scored', lang)} {r['scored']} · {translate('Violations counted', lang)} "
                        f"{r['violations']}", fontsize=9, **ptext)
        people.text(0.52, 0.94, translate("Rule violations", lang), fontsize=13, **ptext)
        for i, v in enumerate(f["violations"][:24]):
            people.text(0.52, 0.89 - 0.033 * i, f"{v['person'] or _post(v['post'], lang)} · {v['rule']}: "
                        f"{(v['description'] or '')[:40]}", fontsize=9, **ptext)
        pages.savefig(people)
    return buf.getvalue()


def xlsx(report: StatsReport, lang: str = "zh") -> bytes:
    f = report.figures
    wb = Workbook()
    sheet = wb.active
    assert sheet is not None
    bold = Font(bold=True)
    sheet.title = translate("Summary", lang)[:31]
    sheet.append([title(report, lang)])
    sheet["A1"].font = bold
    for line in summary_lines(report, lang):
        sheet.append([line])
    posts = wb.create_sheet(translate("By post", lang)[:31])
    posts.append([translate(h, lang) for h in ("Post", "Samples drawn", "Scored", "Average score", "Pass rate",
                                                "Instant fails", "Violations counted")])
    for r in f["by_post"]:
        posts.append([_post(r["post"], lang), r["samples"], r["scored"], r["average"], r["pass_rate"],
                      r["instant_fails"], r["violations"]])
    people = wb.create_sheet(translate("By person", lang)[:31])
    people.append([translate(h, lang) for h in ("Person", "Post", "Scored", "Average score", "Failed",
                                                 "Violations counted")])
    for r in f["by_person"]:
        people.append([r["person"], _post(r["post"], lang), r["scored"], r["average"], r["failed"], r["violations"]])
    weak = wb.create_sheet(translate("Weak points", lang)[:31])
    for w in f["weak_points"]:
        weak.append([_post(w["post"], lang), w["zh"] if lang == "zh" else w["en"], w["share"], w["scored"]])
    viol = wb.create_sheet(translate("Rule violations", lang)[:31])
    for v in f["violations"]:
        viol.append([v["person"], _post(v["post"], lang), v["rule"], v["description"], v["evidence"], v["at"]])
    trend = wb.create_sheet(translate("Trend (weeks)", lang)[:31])
    for w in f["trend"]:
        trend.append([w["week"], w["scored"], w["average"], w["violations"]])
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# Read by the inspectors, the deputy managers who approve it, admins and other systems (the staff token).
reports.register_kind(OtherKind(KIND, frozenset({INSPECTOR, ADMIN, reports.SCHEDULER}), week_starting, figures,
                                frozenset({"deputy"}), "/desk/quality/reports", pdf, xlsx))
