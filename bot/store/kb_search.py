"""Searching the knowledge base in Chinese (D2), on SQLite and PostgreSQL.

Each article version's words (bot/search/chinese.py) are kept in ``kb_search``:

- SQLite: an FTS5 table ``kb_fts`` (external content, kept in step by triggers)
  ranked by ``bm25`` with the question and keywords weighted 4, the answer 1 and the
  single characters 0.5;
- PostgreSQL: a generated ``tsv`` column (``simple`` configuration over the same
  words: question and keywords weight A, answer B, characters D) with a GIN index,
  ranked by ``ts_rank``.

A query word matches as a word or as a phrase of single characters, so 1- and
2-character queries and words jieba cut differently are found too (see chinese.py).
Highlights are made in Python on the stored text (HTML-escaped, matches in ``<mark>``),
the same on both databases.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from markupsafe import Markup
from sqlalchemy import text
from sqlmodel import Session, col, select

from bot.search.chinese import STOPWORDS, Query, Segmenter, default_segmenter, highlight
from bot.store.knowledge import (
    ArticleState,
    KbArticle,
    KbArticleVersion,
    KbSearchRow,
)

# bm25 weights of kb_fts's columns (title, body, chars); PostgreSQL's are the A/B/D weights.
FTS_WEIGHTS = (4.0, 1.0, 0.5)
MAX_LIMIT = 100


@dataclass(frozen=True)
class Hit:
    article: KbArticle
    version: KbArticleVersion
    score: float  # higher is better (bm25 negated on SQLite; ts_rank on PostgreSQL)
    terms: tuple[str, ...]  # the words a match may contain, for highlights

    def question_html(self) -> Markup:
        return highlight(self.version.question, self.terms)

    def answer_html(self, limit: int | None = 160) -> Markup:
        return highlight(self.version.answer, self.terms, limit=limit)

    def keywords_html(self) -> list[Markup]:
        return [highlight(k, self.terms) for k in self.version.keywords]


@dataclass(frozen=True)
class SearchResult:
    query: Query
    hits: list[Hit]
    relaxed: bool = False  # no article had every word: these have some


def index_version(s: Session, row: KbArticleVersion, segmenter: Segmenter | None = None) -> None:
    """(Re)write the search words of one version."""
    seg = segmenter or default_segmenter()
    assert row.id is not None
    tokens = seg.index_tokens(f"{row.question} {' '.join(row.keywords)}", f"{row.answer} {row.fault_class or ''}")
    existing = s.get(KbSearchRow, row.id)
    if existing is None:
        s.add(KbSearchRow(version_id=row.id, article_id=row.article_id, title=tokens.title, body=tokens.body,
                          chars=tokens.chars))
    else:
        existing.title, existing.body, existing.chars = tokens.title, tokens.body, tokens.chars
        s.add(existing)
    s.flush()


def reindex(s: Session, segmenter: Segmenter | None = None) -> int:
    """Every version's words again (after the jieba dictionary changed)."""
    n = 0
    for row in s.exec(select(KbArticleVersion).order_by(col(KbArticleVersion.id))):
        index_version(s, row, segmenter)
        n += 1
    return n


# ------------------------------------------------------------------ queries


def _fts5_match(query: Query) -> str:
    """FTS5 query text. Words are \\w+ only (chinese.py), so quoting is safe."""
    groups = []
    for g in query.groups:
        alts = []
        for word, phrase in zip(g.words, g.char_phrases(), strict=True):
            alts.append(f'{{title body}} : "{word}"')
            alts.append(f'chars : "{phrase}"')
        groups.append("(" + " OR ".join(alts) + ")")
    return (" AND " if query.mode == "all" else " OR ").join(groups)


def _pg_tsquery(query: Query, params: dict[str, Any]) -> str:
    """A tsquery expression over bound parameters (never text pasted into SQL)."""
    groups = []
    for i, g in enumerate(query.groups):
        alts = []
        for j, (word, phrase) in enumerate(zip(g.words, g.char_phrases(), strict=True)):
            params[f"w{i}_{j}"], params[f"c{i}_{j}"] = word, phrase
            alts.append(f"plainto_tsquery('simple', :w{i}_{j}) || phraseto_tsquery('simple', :c{i}_{j})")
        groups.append("(" + " || ".join(alts) + ")")
    return (" && " if query.mode == "all" else " || ").join(groups)


def _scope_sql(scope: str) -> str:
    if scope == "published":  # what juniors see: the approved version of an article in use
        return f"a.state <> '{ArticleState.retired.value}' AND v.version = a.published_version"
    if scope == "current":  # the data manager's and seniors' view: the latest version, any state
        return "v.version = a.current_version"
    raise ValueError("scope is published or current")


def _filters_sql(params: dict[str, Any], *, fault_class: str | None, symptom: str | None,
                 states: tuple[str, ...] | None) -> str:
    parts = []
    if fault_class:
        params["fault_class"] = fault_class
        parts.append("v.fault_class = :fault_class")
    if symptom:
        # The symptom codes are a fixed set of [a-z_] words: a JSON list's text contains "code".
        params["symptom_like"] = f'%"{symptom}"%'
        parts.append("CAST(v.symptoms AS TEXT) LIKE :symptom_like")
    if states:
        names = []
        for i, state in enumerate(states):
            params[f"st{i}"] = state
            names.append(f":st{i}")
        parts.append(f"a.state IN ({', '.join(names)})")
    return "".join(f" AND {p}" for p in parts)


def _ranked_ids(s: Session, query: Query, scope: str, filters: str, params: dict[str, Any],
                limit: int, offset: int) -> list[tuple[int, float]]:
    params = {**params, "limit": limit, "offset": offset}
    joins = ("JOIN kb_article_version v ON v.id = ks.version_id JOIN kb_article a ON a.id = v.article_id "
             f"WHERE {_scope_sql(scope)}{filters}")
    if s.get_bind().dialect.name == "sqlite":
        params["match"] = _fts5_match(query)
        w1, w2, w3 = FTS_WEIGHTS
        sql = (f"SELECT ks.version_id, -bm25(kb_fts, {w1}, {w2}, {w3}) AS score "
               f"FROM kb_fts JOIN kb_search ks ON ks.version_id = kb_fts.rowid {joins} "
               "AND kb_fts MATCH :match ORDER BY score DESC, ks.version_id DESC LIMIT :limit OFFSET :offset")
    else:
        tsq = _pg_tsquery(query, params)
        sql = (f"SELECT ks.version_id, ts_rank(ks.tsv, q.q) AS score FROM kb_search ks "
               f"CROSS JOIN (SELECT {tsq} AS q) AS q {joins} "
               "AND ks.tsv @@ q.q ORDER BY score DESC, ks.version_id DESC LIMIT :limit OFFSET :offset")
    return [(int(r[0]), float(r[1])) for r in s.execute(text(sql), params)]


def _unranked_ids(s: Session, scope: str, filters: str, params: dict[str, Any], limit: int,
                  offset: int) -> list[tuple[int, float]]:
    sql = ("SELECT v.id FROM kb_article_version v JOIN kb_article a ON a.id = v.article_id "
           f"WHERE {_scope_sql(scope)}{filters} ORDER BY a.updated DESC, a.id DESC LIMIT :limit OFFSET :offset")
    return [(int(r[0]), 0.0) for r in s.execute(text(sql), {**params, "limit": limit, "offset": offset})]


def _hits(s: Session, ranked: list[tuple[int, float]], query: Query) -> list[Hit]:
    if not ranked:
        return []
    ids = [vid for vid, _ in ranked]
    rows = {v.id: v for v in s.exec(select(KbArticleVersion).where(col(KbArticleVersion.id).in_(ids)))}
    articles = {a.id: a for a in s.exec(select(KbArticle).where(
        col(KbArticle.id).in_({v.article_id for v in rows.values()})))}
    terms = tuple(query.terms)
    return [Hit(articles[rows[vid].article_id], rows[vid], score, terms) for vid, score in ranked if vid in rows]


def search(s: Session, q: str, *, scope: str = "published", mode: str = "all", fault_class: str | None = None,
           symptom: str | None = None, states: tuple[str, ...] | None = None, limit: int = 20, offset: int = 0,
           relax: bool = True, segmenter: Segmenter | None = None) -> SearchResult:
    """Articles matching ``q`` (best first) within the filters; without searchable words,
    the filtered articles, most recently changed first. ``relax``: when no article has
    every word of a several-word query, those with some of them."""
    seg = segmenter or default_segmenter()
    limit, offset = max(1, min(limit, MAX_LIMIT)), max(0, offset)
    query = seg.query(q, mode=mode)
    params: dict[str, Any] = {}
    filters = _filters_sql(params, fault_class=fault_class, symptom=symptom, states=states)
    if not query:
        return SearchResult(query, _hits(s, _unranked_ids(s, scope, filters, params, limit, offset), query))
    ranked = _ranked_ids(s, query, scope, filters, params, limit, offset)
    if not ranked and relax and mode == "all" and len(query.groups) > 1 and offset == 0:
        # Some of the words: not the little ones (了, 我, 电话 would match everything).
        meaningful = tuple(g for g in query.groups if g.words[0] not in STOPWORDS) or query.groups
        loose = Query(query.text, meaningful, "any")
        return SearchResult(loose, _hits(s, _ranked_ids(s, loose, scope, filters, params, limit, 0), loose),
                            relaxed=True)
    return SearchResult(query, _hits(s, ranked, query))


def suggest(s: Session, *, symptom: str | None, fault_class: str | None, text_: str | None, limit: int = 3,
            segmenter: Segmenter | None = None) -> list[Hit]:
    """D2: approved articles for a caller on the junior's page — those sharing the
    caller's symptom category or fault class, and those sharing words with what the
    caller said; an article matching on more of these ranks higher."""
    seg = segmenter or default_segmenter()
    scores: dict[int, float] = {}
    words = seg.query(text_ or "", mode="any")
    by_text = search(s, text_ or "", scope="published", mode="any", limit=20, relax=False,
                     segmenter=seg).hits if words else []
    for rank, hit in enumerate(by_text):
        assert hit.version.id is not None
        scores[hit.version.id] = scores.get(hit.version.id, 0.0) + 1.0 / (1 + rank)
    tagged: list[Hit] = []
    if symptom:
        tagged += search(s, "", scope="published", limit=50, segmenter=seg, symptom=symptom).hits
    if fault_class:
        tagged += search(s, "", scope="published", limit=50, segmenter=seg, fault_class=fault_class).hits
    for hit in tagged:
        assert hit.version.id is not None
        scores[hit.version.id] = scores.get(hit.version.id, 0.0) + 1.0
    if not scores:
        return []
    best = sorted(scores.items(), key=lambda kv: (-kv[1], -kv[0]))[:limit]
    return _hits(s, best, words)
