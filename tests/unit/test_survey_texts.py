"""The surveyor's pages speak the desk's words (bot/desk/texts/survey.yml): the catalogue
loads with every post's file (no text translated twice, differently) and every t("…")
of the survey templates has its Mandarin. Runs without a database."""

from __future__ import annotations

import re
from pathlib import Path

from bot.desk import i18n

TEMPLATES = Path(__file__).resolve().parents[2] / "bot" / "desk" / "templates"
SURVEY_TEMPLATES = ("surveys.html", "dissatisfied.html", "survey.html", "_survey_nav.html", "_survey_row.html",
                    "_team_tasks.html", "_ticket_surveys.html")


def test_every_survey_text_has_its_mandarin() -> None:
    catalogue = i18n.catalogue()
    for name in SURVEY_TEMPLATES:
        source = (TEMPLATES / name).read_text(encoding="utf-8")
        for text in re.findall(r'\bt[x]?\("([^"]+)"\)', source):
            assert text in catalogue, f"{name}: {text!r} has no Mandarin in bot/desk/texts"


def test_the_survey_codes_have_words_in_both_languages() -> None:
    for kind, values in {"survey_state": ("due", "in_progress", "completed", "stopped", "unreachable",
                                          "no_contact", "do_not_call", "opted_out"),
                         "survey_result": ("satisfied", "dissatisfied", "not_fixed"),
                         "survey_cause": ("not_ours", "centre", "telecom")}.items():
        for value in values:
            assert i18n.code_text(kind, value, "zh") != value
            assert i18n.code_text(kind, value, "en") != value or "_" not in value
