"""Q2–Q8: scorecards, scores and violations, and who may see a person's.

A scorecard (``scorecards.yml``, one per post) lists items with a weight (the most points
they give) and *instant-fail* items (a rude answer): yes/no findings that make the whole
score 0 and failed, and record a violation against the person when the score is
submitted. Every item may carry a comment and evidence: a time in the call recording
(``mm:ss``) and a line of the transcript.

A score is a draft while the inspector works on it (edits are kept too); once
submitted it changes only with a reason, each change kept with the score as it was
before and after (``qa_score_change``). Violations are counted in the person's
assessment; a withdrawn one stays, marked, with who withdrew it and why.

Who sees a person's scores and violations (:func:`may_see`): the person, their
supervisors (:data:`SUPERVISORS`: a junior's seniors; every post's deputy managers), the
quality inspectors who record them, and administrators — nobody else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, cast

import structlog
import yaml
from sqlalchemy import CursorResult, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bot.store.errors import Conflict, NotFound, ServiceError
from bot.store.models import DeskUser, utcnow
from bot.store.quality import QaSample, QaScore, QaScoreChange, QaViolation, ScoreState

log = structlog.get_logger(__name__)

DEFAULT_CARDS = Path(__file__).parent / "scorecards.yml"
INSPECTORS = frozenset({"inspector", "admin"})  # score, record violations
SUPERVISORS: dict[str, frozenset[str]] = {
    "junior": frozenset({"senior", "deputy"}),  # S3: seniors assess their juniors
}
DEFAULT_SUPERVISORS = frozenset({"deputy"})  # the deputy managers get the weekly QA report (Q8)
MAX_TEXT = 2000
RECORDING_AT = re.compile(r"^(\d{1,3}):([0-5]\d)$")


@dataclass(frozen=True)
class CardItem:
    id: str
    zh: str
    en: str
    weight: float
    instant_fail: bool


@dataclass(frozen=True)
class Card:
    post: str
    version: int
    pass_percent: float
    items: tuple[CardItem, ...]

    def item(self, item_id: str) -> CardItem | None:
        return next((i for i in self.items if i.id == item_id), None)

    @property
    def max_points(self) -> float:
        return sum(i.weight for i in self.items if not i.instant_fail)


class CardError(ValueError):
    pass


def parse_cards(text: str, where: str = "scorecards") -> dict[str, Card]:
    """The scorecards of a YAML text, checked: a broken file fails at start, not mid-score."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise CardError(f"{where}: a mapping of post → scorecard")
    cards = {}
    for post, raw in data.items():
        if not isinstance(raw, dict) or not isinstance(raw.get("items"), list) or not raw["items"]:
            raise CardError(f"{where}: {post}: needs a list of items")
        items, seen = [], set()
        for n, it in enumerate(raw["items"]):
            if not isinstance(it, dict) or not re.match(r"^[a-z][a-z0-9_]{0,39}$", str(it.get("id", ""))):
                raise CardError(f"{where}: {post}: item {n + 1} needs an id (lower-case letters, digits, _)")
            if it["id"] in seen:
                raise CardError(f"{where}: {post}: item {it['id']} is there twice")
            seen.add(it["id"])
            instant = bool(it.get("instant_fail", False))
            weight = float(it.get("weight", 0))
            if not instant and weight <= 0:
                raise CardError(f"{where}: {post}: item {it['id']} needs a weight above 0")
            items.append(CardItem(str(it["id"]), str(it.get("zh") or it["id"]), str(it.get("en") or it["id"]),
                                  0.0 if instant else weight, instant))
        card = Card(str(post), int(raw.get("version", 1)), float(raw.get("pass_percent", 80)), tuple(items))
        if card.max_points <= 0:
            raise CardError(f"{where}: {post}: no item gives points")
        cards[str(post)] = card
    return cards


@cache
def load_cards(path: Path = DEFAULT_CARDS) -> dict[str, Card]:
    return parse_cards(path.read_text(encoding="utf-8"), path.name)


def card_for(cards: dict[str, Card], post: str) -> Card:
    card = cards.get(post)
    if card is None:
        raise ServiceError(f"there is no scorecard for the post {post!r}", code="no_scorecard")
    return card


# ---------------------------------------------------------------- visibility


def role_of(s: Session, username: str | None) -> str | None:
    if username is None:
        return None
    user = s.exec(select(DeskUser).where(DeskUser.username == username)).first()
    return user.role if user is not None else None


def may_see(viewer: str, viewer_role: str, person: str | None, person_post: str | None) -> bool:
    """May ``viewer`` see the scores and violations of ``person`` (whose post is
    ``person_post``)? Their own, as a supervisor of that post, or as inspector/admin."""
    if viewer_role in INSPECTORS:
        return True
    if person is not None and viewer == person:
        return True
    return viewer_role in SUPERVISORS.get(person_post or "", DEFAULT_SUPERVISORS)


def _require_inspector(role: str, what: str) -> None:
    if role not in INSPECTORS:
        raise ServiceError(f"a {role} may not {what}", code="forbidden_action")


def _text(value: str | None, what: str, *, required: bool = False) -> str | None:
    value = (value or "").strip() or None
    if required and value is None:
        raise ServiceError(f"{what} is required", code="reason_required")
    if value is not None and len(value) > MAX_TEXT:
        raise ServiceError(f"{what} is longer than {MAX_TEXT} characters", code="text_too_long")
    return value


# ---------------------------------------------------------------- scores


@dataclass(frozen=True)
class Evaluated:
    items: list[dict[str, Any]]
    points: float
    percent: float
    instant_fail: bool
    passed: bool


def evaluate(card: Card, given: dict[str, dict[str, Any]]) -> Evaluated:
    """The card's items with what the inspector gave (points 0 … weight, or found for an
    instant-fail item; a comment; evidence), the total, and whether it passes."""
    unknown = sorted(set(given) - {i.id for i in card.items})
    if unknown:
        raise ServiceError(f"not on the {card.post} scorecard: {', '.join(unknown)}", code="unknown_item")
    items, points, failed = [], 0.0, False
    for it in card.items:
        g = given.get(it.id, {})
        # The item's words kept with the score: a later edit of the card renames nothing scored.
        row: dict[str, Any] = {"id": it.id, "zh": it.zh, "en": it.en, "weight": it.weight,
                               "instant_fail": it.instant_fail}
        if it.instant_fail:
            row["found"] = bool(g.get("found", False))
            failed = failed or row["found"]
        else:
            raw = g.get("points")
            if raw is None or raw == "":
                raise ServiceError(f"{it.en}: give 0 to {it.weight:g} points", code="points_required")
            try:
                value = float(raw)
            except (TypeError, ValueError, OverflowError) as e:
                raise ServiceError(f"{it.en}: points are a number, not {str(raw)[:20]!r}", code="bad_points") from e
            if not 0 <= value <= it.weight:
                raise ServiceError(f"{it.en}: points are 0 to {it.weight:g}, not {value:g}", code="bad_points")
            row["points"] = value
            points += value
        row["comment"] = _text(g.get("comment"), f"{it.en}: the comment")
        at = _text(g.get("recording_at"), f"{it.en}: the recording time")
        if at is not None and not RECORDING_AT.match(at):
            raise ServiceError(f"{it.en}: a recording time is mm:ss, not {at[:20]!r}", code="bad_evidence")
        row["recording_at"] = at
        line = g.get("transcript_line")
        if line in (None, ""):
            row["transcript_line"] = None
        else:
            try:
                row["transcript_line"] = int(line)
            except (TypeError, ValueError) as e:
                raise ServiceError(f"{it.en}: a transcript line is a number", code="bad_evidence") from e
            if not 1 <= row["transcript_line"] <= 10000:
                raise ServiceError(f"{it.en}: a transcript line is 1 to 10000", code="bad_evidence")
        items.append(row)
    if failed:
        points = 0.0
    percent = round(100 * points / card.max_points, 1)
    return Evaluated(items, points, percent, failed, not failed and percent >= card.pass_percent)


def _snapshot(score: QaScore) -> dict[str, Any]:
    return {"items": score.items, "points": score.points, "percent": score.percent,
            "instant_fail": score.instant_fail, "passed": score.passed, "comment": score.comment,
            "state": score.state, "version": score.version}


def _change(s: Session, score: QaScore, action: str, actor: str, now: datetime, reason: str | None,
            before: dict[str, Any] | None) -> None:
    assert score.id is not None
    s.add(QaScoreChange(score_id=score.id, version=score.version, action=action, actor=actor, at=now,
                        reason=reason, before=before, after=_snapshot(score)))


def get_sample(s: Session, sample_id: int) -> QaSample:
    row = s.get(QaSample, sample_id)
    if row is None:
        raise NotFound(f"no sample {sample_id}", code="sample_not_found")
    return row


def get_score(s: Session, score_id: int) -> QaScore:
    row = s.get(QaScore, score_id, populate_existing=True)
    if row is None:
        raise NotFound(f"no score {score_id}", code="score_not_found")
    return row


def score_of(s: Session, sample_id: int) -> QaScore | None:
    return s.exec(select(QaScore).where(QaScore.sample_id == sample_id)).first()


def history(s: Session, score_id: int) -> list[QaScoreChange]:
    return list(s.exec(select(QaScoreChange).where(QaScoreChange.score_id == score_id)
                       .order_by(col(QaScoreChange.id))))


def score_sample(s: Session, cards: dict[str, Card], sample_id: int, given: dict[str, dict[str, Any]],
                 actor: str, role: str, *, comment: str | None = None, submit: bool = False,
                 now: datetime | None = None) -> QaScore:
    """Score a sample (a new draft, or the draft edited); ``submit``: and submit it."""
    _require_inspector(role, "score work")
    now = now or utcnow()
    sample = get_sample(s, sample_id)
    card = card_for(cards, sample.post)
    ev = evaluate(card, given)
    note = _text(comment, "the comment")
    score = score_of(s, sample_id)
    if score is None:
        score = QaScore(sample_id=sample_id, post=sample.post, person=sample.person, card=card.post,
                        card_version=card.version, items=ev.items, points=ev.points, max_points=card.max_points,
                        percent=ev.percent, instant_fail=ev.instant_fail, passed=ev.passed, comment=note,
                        scored_by=actor, created=now, updated=now, work_at=sample.work_at)
        try:
            with s.begin_nested():
                s.add(score)
                s.flush()
        except IntegrityError as e:
            raise Conflict(f"sample {sample_id} is being scored by someone else", code="already_scored") from e
        _change(s, score, "created", actor, now, None, None)
    else:
        if score.state != ScoreState.draft.value:
            raise Conflict(f"score {score.id} was submitted: change it with a reason", code="score_submitted")
        before = _snapshot(score)
        _update(s, score, ScoreState.draft.value, items=ev.items, points=ev.points, percent=ev.percent,
                instant_fail=ev.instant_fail, passed=ev.passed, comment=note, updated=now,
                version=score.version + 1)
        _change(s, score, "edited", actor, now, None, before)
    if submit:
        assert score.id is not None
        return submit_score(s, score.id, actor, role, now=now)
    return score


def _update(s: Session, score: QaScore, from_state: str, **values: Any) -> None:
    """One conditional UPDATE: of two inspectors at once, one wins."""
    result = s.execute(update(QaScore).where(col(QaScore.id) == score.id, col(QaScore.state) == from_state,
                                             col(QaScore.version) == score.version).values(**values))
    if cast("CursorResult[Any]", result).rowcount != 1:
        raise Conflict(f"score {score.id} was changed meanwhile; reload it", code="stale_score")
    s.refresh(score)


def submit_score(s: Session, score_id: int, actor: str, role: str, *, now: datetime | None = None) -> QaScore:
    _require_inspector(role, "submit a score")
    now = now or utcnow()
    score = get_score(s, score_id)
    if score.state != ScoreState.draft.value:
        raise Conflict(f"score {score_id} was already submitted", code="score_submitted")
    _update(s, score, ScoreState.draft.value, state=ScoreState.submitted.value, submitted_at=now, updated=now,
            version=score.version + 1)
    _change(s, score, "submitted", actor, now, None, None)
    _instant_fail_violations(s, score, actor, now, None)
    log.info("qa.score_submitted", score_id=score_id, post=score.post, person=score.person,
             percent=score.percent, passed=score.passed)
    return score


def change_score(s: Session, cards: dict[str, Card], score_id: int, given: dict[str, dict[str, Any]],
                 actor: str, role: str, reason: str | None, *, comment: str | None = None,
                 now: datetime | None = None) -> QaScore:
    """A submitted score changed: only with a reason, the score before and after kept.
    Instant-fail findings added record their violation; ones taken back withdraw it."""
    _require_inspector(role, "change a score")
    why = _text(reason, "the reason for the change", required=True)
    now = now or utcnow()
    score = get_score(s, score_id)
    if score.state != ScoreState.submitted.value:
        raise Conflict(f"score {score_id} is still a draft: edit it", code="still_a_draft")
    card = card_for(cards, score.card)
    ev = evaluate(card, given)
    before = _snapshot(score)
    _update(s, score, ScoreState.submitted.value, items=ev.items, points=ev.points, percent=ev.percent,
            instant_fail=ev.instant_fail, passed=ev.passed, comment=_text(comment, "the comment"), updated=now,
            version=score.version + 1)
    _change(s, score, "changed", actor, now, why, before)
    _instant_fail_violations(s, score, actor, now, why)
    log.info("qa.score_changed", score_id=score_id, by=actor)
    return score


def _instant_fail_violations(s: Session, score: QaScore, actor: str, now: datetime, reason: str | None) -> None:
    cards_items = {i["id"]: i for i in score.items}
    existing = {v.rule: v for v in s.exec(select(QaViolation).where(QaViolation.score_id == score.id))}
    for item_id, row in cards_items.items():
        if not row.get("instant_fail"):
            continue
        v = existing.get(item_id)
        if row.get("found") and v is None:
            evidence = "; ".join(x for x in (f"recording {row['recording_at']}" if row.get("recording_at") else "",
                                             f"transcript line {row['transcript_line']}"
                                             if row.get("transcript_line") else "") if x) or None
            s.add(QaViolation(person=score.person, post=score.post, sample_id=score.sample_id, score_id=score.id,
                              rule=item_id, description=row.get("comment") or item_id, evidence=evidence,
                              recorded_by=actor, at=now, work_at=score.work_at))
        elif row.get("found") and v is not None and v.withdrawn_at is not None:
            v.withdrawn_at, v.withdrawn_by, v.withdrawn_reason = None, None, None
            s.add(v)
        elif not row.get("found") and v is not None and v.withdrawn_at is None:
            v.withdrawn_at, v.withdrawn_by, v.withdrawn_reason = now, actor, reason or "the score was changed"
            s.add(v)
    s.flush()


# ---------------------------------------------------------------- violations


def record_violation(s: Session, sample_id: int, rule: str, description: str | None, evidence: str | None,
                     actor: str, role: str, *, now: datetime | None = None) -> QaViolation:
    """Q8: a violation found in a sample, against the sample's person (or its post)."""
    _require_inspector(role, "record a violation")
    now = now or utcnow()
    sample = get_sample(s, sample_id)
    rule = (rule or "other").strip()[:60] or "other"
    what = _text(description, "what happened", required=True)
    assert what is not None
    row = QaViolation(person=sample.person, post=sample.post, sample_id=sample_id, rule=rule, description=what,
                      evidence=_text(evidence, "the evidence"), recorded_by=actor, at=now, work_at=sample.work_at)
    s.add(row)
    s.flush()
    log.info("qa.violation_recorded", violation_id=row.id, person=sample.person, post=sample.post, by=actor)
    return row


def withdraw_violation(s: Session, violation_id: int, actor: str, role: str, reason: str | None, *,
                       now: datetime | None = None) -> QaViolation:
    _require_inspector(role, "withdraw a violation")
    why = _text(reason, "the reason", required=True)
    row = s.get(QaViolation, violation_id)
    if row is None:
        raise NotFound(f"no violation {violation_id}", code="violation_not_found")
    if row.withdrawn_at is not None:
        raise Conflict(f"violation {violation_id} was already withdrawn", code="already_withdrawn")
    row.withdrawn_at, row.withdrawn_by, row.withdrawn_reason = now or utcnow(), actor, why
    s.add(row)
    return row


@dataclass(frozen=True)
class PersonRecord:
    person: str
    post: str | None
    scores: list[QaScore]
    violations: list[QaViolation]

    @property
    def counted(self) -> int:
        """Violations counted in the assessment (not withdrawn)."""
        return sum(1 for v in self.violations if v.withdrawn_at is None)


def person_record(s: Session, viewer: str, viewer_role: str, person: str) -> PersonRecord:
    """A person's submitted scores and violations, for someone who may see them (else
    ``forbidden``, the same whether the person exists or not)."""
    post = role_of(s, person)
    if not may_see(viewer, viewer_role, person, post):
        raise ServiceError(f"only {person} themself and their supervisors see their scores",
                           code="forbidden_action")
    scores = list(s.exec(select(QaScore).where(QaScore.person == person, QaScore.state == ScoreState.submitted.value)
                         .order_by(col(QaScore.work_at).desc())))
    violations = list(s.exec(select(QaViolation).where(QaViolation.person == person)
                             .order_by(col(QaViolation.at).desc())))
    return PersonRecord(person, post, scores, violations)


def visible_people(s: Session, viewer: str, viewer_role: str) -> list[str]:
    """Whose records the viewer may open: themself, and the people of the posts they supervise."""
    people = {viewer}
    for user in s.exec(select(DeskUser)):
        if may_see(viewer, viewer_role, user.username, user.role):
            people.add(user.username)
    return sorted(people)
