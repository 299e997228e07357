"""D2, searching the knowledge base in Chinese: jieba words with the telecom dictionary
(nlu/jieba/userdict.txt) and the designers' synonyms (nlu/kb/synonyms.yml), 1-, 2- and
4-character queries, ranking, highlights, and held-out queries
(tests/fixtures/kb/queries.yml), on SQLite (FTS5, bm25) and PostgreSQL (tsvector,
ts_rank): the ``db`` fixture runs both."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlmodel import Session

from bot.search.chinese import (
    Segmenter,
    SynonymsError,
    chars_of,
    default_segmenter,
    highlight,
    load_synonyms,
)
from bot.store import kb_search, knowledge
from bot.store.db import Database
from bot.store.knowledge import ArticleInput

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kb"
ARTICLES: dict[str, dict[str, Any]] = yaml.safe_load((FIXTURES / "articles.yml").read_text("utf-8"))["articles"]
QUERIES: list[dict[str, Any]] = yaml.safe_load((FIXTURES / "queries.yml").read_text("utf-8"))["queries"]


def _load(s: Session, approve: bool = True) -> dict[str, int]:
    ids = {}
    for key, a in ARTICLES.items():
        data = ArticleInput(a["question"], a["answer"], None, tuple(a["symptoms"]), tuple(a["keywords"]))
        article = knowledge.create_article(s, data, "dm", "datamanager", submit=approve)
        assert article.id is not None
        if approve:
            knowledge.approve_article(s, article.id, "sen", "senior")
        ids[key] = article.id
    return ids


@pytest.fixture
def kb(db: Database) -> tuple[Database, dict[str, int]]:
    ids = db.call(_load)
    return db, {**{v: k for k, v in ids.items()}, **ids}


def keys(db: Database, names: dict[Any, Any], q: str, **kw: Any) -> list[str]:
    result = db.call(kb_search.search, q, **kw)
    return [names[h.article.id] for h in result.hits]


def test_queries_of_one_two_and_four_characters(kb: tuple[Database, dict[Any, Any]]) -> None:
    db, names = kb
    # One character: found as a character, wherever jieba put it in a word.
    assert set(keys(db, names, "猫")) == {"broadband_red_light", "broadband_slow"}  # 光猫
    assert set(keys(db, names, "串")) == {"cross_talk"}  # 串音, 串线
    # Two characters: a word (杂音), and two characters jieba never makes a word of (号音, inside 拨号音).
    assert keys(db, names, "杂音")[0] == "noise"
    assert keys(db, names, "号音") == ["no_dial_tone"]
    assert keys(db, names, "LOS") == ["broadband_red_light"]  # Latin letters, any case
    assert keys(db, names, "los") == ["broadband_red_light"]
    # Four characters: a word of the telecom dictionary (userdict.txt: 打不出去) …
    assert default_segmenter().query("打不出去").groups[0].words[0] == "打不出去"
    assert keys(db, names, "打不出去")[0] == "cannot_call_out"
    # … and four characters that are two words, both needed.
    assert keys(db, names, "光纤中断") == ["broadband_red_light"]
    assert keys(db, names, "恢复出厂") == ["wifi_password"]


def test_synonyms_from_the_designers_file(kb: tuple[Database, dict[Any, Any]]) -> None:
    db, names = kb
    # 网络 is nowhere in the articles: its synonyms 宽带 and 网速 are.
    assert set(keys(db, names, "网络")) == {"broadband_red_light", "broadband_slow"}
    # 无声 / 没声音 / 听不到声音 are one group: the article says 没声音 (a keyword), the other 无声.
    assert "cable_cut" in keys(db, names, "无声") and "no_sound_handset" in keys(db, names, "没声音")
    assert "noise" in keys(db, names, "噪音")  # 噪音 ~ 杂音
    groups = {g.words[0]: set(g.words) for g in default_segmenter().query("座机 没声音").groups}
    assert groups["座机"] >= {"固话", "固定电话"} and groups["没声音"] >= {"无声", "没有声音"}


def test_held_out_queries(kb: tuple[Database, dict[Any, Any]]) -> None:
    db, names = kb
    misses = []
    for case in QUERIES:
        got = keys(db, names, case["q"])
        if case["expect"] not in got[: case.get("top", 3)]:
            misses.append(f"{case['q']!r}: expected {case['expect']}, got {got[:5]}")
    assert not misses, "\n".join(misses)


def test_ranking_highlights_and_what_juniors_see(kb: tuple[Database, dict[Any, Any]]) -> None:
    db, names = kb
    # The question and keywords weigh more than the answer: 话机 is in handset_broken's question,
    # in no_dial_tone's keywords, and only in the answers of others.
    ranked = keys(db, names, "话机")
    assert ranked[:2] == ["handset_broken", "no_dial_tone"] or ranked[:2] == ["no_dial_tone", "handset_broken"]
    assert ranked.index("no_sound_handset") > 1
    hit = db.call(kb_search.search, "光猫 红灯").hits[0]
    # LOS灯 is marked too: a synonym of 红灯 (nlu/kb/synonyms.yml), found whatever its case.
    assert str(hit.question_html()) == "宽带上不了网，<mark>光猫</mark><mark>LOS灯</mark><mark>红灯</mark>闪烁"
    # A hard case the data manager is still writing, and a retired one: not for juniors.
    def draft_and_retire(s: Session) -> int:
        draft = knowledge.create_article(s, ArticleInput("电话机冒烟<script>alert(1)</script>", "立即断电 & 报修"),
                                         "dm", "datamanager")
        knowledge.retire_article(s, names["wifi_password"], "dm", "datamanager", "路由器不归我们管")
        assert draft.id is not None
        return draft.id

    names = {**names, db.call(draft_and_retire): "draft"}
    assert keys(db, names, "冒烟") == []
    assert keys(db, names, "冒烟", scope="current") == ["draft"]
    draft = db.call(kb_search.search, "冒烟", scope="current").hits[0]
    assert "<script>" not in str(draft.question_html())
    assert "&lt;script&gt;" in str(draft.question_html()) and "&amp;" in str(draft.answer_html())
    assert keys(db, names, "密码") == []  # retired
    assert keys(db, names, "密码", scope="current") == ["wifi_password"]  # the data manager still finds it


def test_an_edit_waits_for_approval_while_the_approved_text_stays_in_use(
        kb: tuple[Database, dict[Any, Any]]) -> None:
    db, names = kb
    article = names["noise"]
    db.call(knowledge.edit_article, article, ArticleInput("通话有嗡嗡声", "检查电源适配器"), "dm", "datamanager",
            "嗡嗡声多为电源干扰", expected_version=1)
    assert keys(db, names, "嗡嗡声") == []  # not approved yet: juniors still see version 1
    assert keys(db, names, "杂音")[0] == "noise"
    assert keys(db, names, "嗡嗡声", scope="current") == ["noise"]
    db.call(knowledge.submit_article, article, "dm", "datamanager")
    db.call(knowledge.approve_article, article, "sen", "senior")
    assert keys(db, names, "嗡嗡声") == ["noise"] and "noise" not in keys(db, names, "受潮")


def test_filters_and_suggestions(kb: tuple[Database, dict[Any, Any]]) -> None:
    db, names = kb
    assert set(keys(db, names, "", symptom="broadband_down")) == {"broadband_red_light", "broadband_slow"}
    assert set(keys(db, names, "话机", symptom="other")) == {"handset_broken", "no_sound_handset"}

    def suggested(**kw: Any) -> list[str]:
        return [names[h.article.id] for h in db.call(kb_search.suggest, **kw)]

    # The caller's symptom and words agree: that article first; words alone help too.
    assert suggested(symptom="noise", fault_class=None, text_="家里电话有沙沙声")[0] == "noise"
    assert suggested(symptom=None, fault_class=None, text_="光猫一直亮红灯")[0] == "broadband_red_light"
    assert suggested(symptom=None, fault_class=None, text_="了吧") == []  # nothing meaningful said


def test_segmenter_pieces(tmp_path: Path) -> None:
    assert chars_of("宽带ADSL 2号") == ["宽", "带", "adsl", "2", "号"]
    assert str(highlight("<b>宽带</b>断了", ["宽带"])) == "&lt;b&gt;<mark>宽带</mark>&lt;/b&gt;断了"
    assert str(highlight("一" * 50 + "宽带" + "二" * 50, ["宽带"], limit=20)).startswith("…")
    bad = tmp_path / "synonyms.yml"
    bad.write_text("synonyms: [[宽带]]", encoding="utf-8")
    with pytest.raises(SynonymsError, match="two or more"):
        load_synonyms(bad)
    # A broken file does not stop the search: no synonyms, the words still work.
    seg = Segmenter(synonyms_file=bad)
    assert [g.words for g in seg.query("宽带").groups] == [("宽带",)]
    assert seg.query("   ").groups == ()
