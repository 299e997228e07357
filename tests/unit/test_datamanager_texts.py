"""The data manager's pages speak Mandarin when the desk does (issue 14): every
``t("…")`` in their templates has its Mandarin in bot/desk/texts/datamanager.yml, and
every code they show has words in both languages."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.desk.i18n import code_text, translate
from bot.store.knowledge import ArticleState

DESK = Path(__file__).resolve().parents[2] / "bot" / "desk"
TEMPLATES = ("datamanager.html", "archive.html", "archive_record.html", "kb_task.html", "kb_edit.html",
             "kb_article.html", "kb_articles.html", "kb_approvals.html", "_kb_suggestions.html")
TEXTS = yaml.safe_load((DESK / "texts" / "datamanager.yml").read_text("utf-8"))


def test_every_text_of_the_pages_has_its_mandarin() -> None:
    keys = {m for name in TEMPLATES for m in re.findall(r'\bt\("([^"]+)"\)', (DESK / "templates" / name).read_text("utf-8"))}
    assert len(keys) > 80
    missing = sorted(k for k in keys if k not in TEXTS)
    assert missing == []
    assert all(translate(k, "zh") != k for k in keys)


def test_the_codes_have_words_in_both_languages() -> None:
    families = {"kb_state": [s.value for s in ArticleState], "kb_task": ["open", "overdue", "done", "done_late"],
                "kb_outcome": ["written", "covered"], "archive_kind": ["report", "conversation", "survey", "text"],
                "archive_text": ["caller_message", "symptom_text", "operator_note"],
                "kb_event": ["created", "edited", "submitted", "approved", "sent_back", "retired"]}
    for kind, values in families.items():
        for value in values:
            assert code_text(kind, value, "zh") != value, (kind, value)
            assert f"en.{kind}:{value}" in TEXTS, (kind, value)
