"""Chinese text for search (D2): jieba word segmentation with the telecom words the
dialogue knows (``nlu/jieba/userdict.txt``), synonyms the designers keep
(``nlu/kb/synonyms.yml``), what goes into a full-text index and what a query becomes,
and highlights.

An indexed text becomes three token strings (space-separated, for SQLite FTS5's
``unicode61`` tokenizer and PostgreSQL's ``simple`` configuration alike):

- ``title`` and ``body``: jieba's search-mode words (words and the dictionary words
  inside them: 打不出去 → 不出, 出去, 打不出去), lower-cased;
- ``chars``: every character, in order, so that any 1-, 2- or n-character query is
  found as a phrase of single characters even where jieba cut the text elsewhere
  (宽带网 split as 宽带/网 still contains the phrase 带 网).

A query becomes term groups: each jieba word of the query with its synonyms; a record
matches a group when it has one of its words (as a word, or as a phrase of characters).
Groups are AND-ed (``mode="all"``, the search box) or OR-ed (``mode="any"``, the
suggestions from a caller's own words, where one shared word is a hint).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import structlog
import yaml
from markupsafe import Markup, escape

log = structlog.get_logger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_USERDICT_DIR = REPO_ROOT / "nlu" / "jieba"
DEFAULT_SYNONYMS_FILE = REPO_ROOT / "nlu" / "kb" / "synonyms.yml"

# What can be a token: letters, digits (any script). Everything else separates.
_WORD = re.compile(r"\w+")
_CJK = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
MAX_QUERY_CHARS = 200
MAX_GROUPS = 12
# Words too common to hint at an article in a caller's own words (mode="any").
STOPWORDS = frozenset("的 了 是 我 你 他 她 它 我们 我家 家里 一下 一个 这个 那个 什么 怎么 怎么办 为什么 "
                      "吗 呢 吧 啊 呀 在 有 没 不 也 都 就 还 又 和 与 或 请 帮 帮忙 麻烦 谢谢 您好 你好 "
                      "电话 一直 现在 今天 昨天 时候".split())


class SynonymsError(ValueError):
    """The synonyms file is unreadable or malformed (the reason names the file)."""


def load_synonyms(path: Path) -> list[tuple[str, ...]]:
    """The groups of ``synonyms.yml``: ``synonyms: [[宽带, 网络], …]`` (a word in two
    groups joins them)."""
    if not path.is_file():
        return []
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as e:
        raise SynonymsError(f"{path.name}: cannot read the synonyms: {e}") from e
    groups = data.get("synonyms") if isinstance(data, dict) else None
    if not isinstance(groups, list):
        raise SynonymsError(f"{path.name}: expected `synonyms:` with a list of word lists")
    out = []
    for i, group in enumerate(groups):
        if not isinstance(group, list) or len(group) < 2 or not all(isinstance(w, str) and w.strip() for w in group):
            raise SynonymsError(f"{path.name}: synonyms[{i}]: a list of two or more words")
        out.append(tuple(dict.fromkeys(w.strip().lower() for w in group)))
    return out


@dataclass(frozen=True)
class IndexTokens:
    title: str
    body: str
    chars: str


@dataclass(frozen=True)
class TermGroup:
    """One query word and its synonyms: a match needs any one of ``words``."""

    words: tuple[str, ...]

    def char_phrases(self) -> list[str]:
        return [" ".join(chars_of(w)) for w in self.words]


@dataclass(frozen=True)
class Query:
    text: str
    groups: tuple[TermGroup, ...]
    mode: str = "all"

    @property
    def terms(self) -> list[str]:
        """Every word a hit may contain (for highlights), longest first."""
        words = {w for g in self.groups for w in g.words}
        return sorted(words, key=lambda w: (-len(w), w))

    def __bool__(self) -> bool:
        return bool(self.groups)


@dataclass
class Segmenter:
    """jieba with our dictionary and synonyms. jieba is not thread-safe while it loads
    its dictionary, so the first use loads it under a lock (the store's work runs in
    threads)."""

    userdict_dir: Path = DEFAULT_USERDICT_DIR
    synonyms_file: Path = DEFAULT_SYNONYMS_FILE
    _tokenizer: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict, init=False)

    def load(self) -> Any:
        with self._lock:
            if self._tokenizer is None:
                import logging

                import jieba

                jieba.setLogLevel(logging.WARNING)
                tokenizer = jieba.Tokenizer()
                tokenizer.initialize()
                # The dialogue's telecom words (Rasa's JiebaTokenizer loads the same folder).
                for path in sorted(self.userdict_dir.glob("*")) if self.userdict_dir.is_dir() else []:
                    if path.is_file():
                        tokenizer.load_userdict(str(path))
                try:
                    groups = load_synonyms(self.synonyms_file)
                except SynonymsError as e:  # a designer's typo must not stop the search
                    log.error("search.synonyms_unreadable", error=str(e))
                    groups = []
                self.synonyms = _merge_groups(groups)
                for word in self.synonyms:  # segmented whole, so a query word finds its group
                    if len(word) > 1:
                        tokenizer.add_word(word, freq=2000)
                self._tokenizer = tokenizer
                log.info("search.segmenter_loaded", synonyms=len(groups), words=len(self.synonyms))
        return self._tokenizer

    # ------------------------------------------------------------ indexing

    def words_for_index(self, text: str) -> list[str]:
        tokenizer = self.load()
        return [w for w in (t.strip().lower() for t in tokenizer.cut_for_search(text or "")) if _WORD.fullmatch(w)]

    def index_tokens(self, title: str, body: str) -> IndexTokens:
        return IndexTokens(" ".join(self.words_for_index(title)), " ".join(self.words_for_index(body)),
                           " ".join(chars_of(f"{title} {body}")))

    # --------------------------------------------------------------- queries

    def query(self, text: str, *, mode: str = "all") -> Query:
        """A search box's words → term groups (empty when nothing searchable is left)."""
        self.load()
        text = (text or "").strip()[:MAX_QUERY_CHARS]
        if mode not in ("all", "any"):
            raise ValueError("mode is all or any")
        words: list[str] = []
        for chunk in _WORD.findall(text.lower()):
            if chunk in self.synonyms:  # a synonym as typed (没声音) even if jieba would cut it
                words.append(chunk)
                continue
            for w in self._tokenizer.cut(chunk):
                w = w.strip().lower()
                if not w or not _WORD.fullmatch(w):
                    continue
                if mode == "any" and (w in STOPWORDS or (len(w) == 1 and _CJK.match(w))):
                    continue  # a caller's "了", "我": no hint at an article
                words.append(w)
        groups = []
        for w in dict.fromkeys(words):
            group = self.synonyms.get(w, (w,))
            groups.append(TermGroup(tuple(dict.fromkeys((w, *group)))))
        return Query(text, tuple(groups[:MAX_GROUPS]), mode)


def _merge_groups(groups: Iterable[tuple[str, ...]]) -> dict[str, tuple[str, ...]]:
    """word → every word of its group(s); groups sharing a word are one group."""
    merged: list[set[str]] = []
    for group in groups:
        joined = set(group)
        for other in [m for m in merged if m & joined]:
            joined |= other
            merged.remove(other)
        merged.append(joined)
    out: dict[str, tuple[str, ...]] = {}
    for words in merged:
        ordered = tuple(sorted(words, key=lambda w: (-len(w), w)))
        for w in words:
            out[w] = ordered
    return out


def chars_of(text: str) -> list[str]:
    """Single characters for the ``chars`` index: each CJK character alone, and each
    run of other letters/digits as one lower-case token."""
    out: list[str] = []
    for run in _WORD.findall((text or "").lower()):
        buf = ""
        for ch in run:
            if _CJK.match(ch):
                if buf:
                    out.append(buf)
                    buf = ""
                out.append(ch)
            else:
                buf += ch
        if buf:
            out.append(buf)
    return out


@cache
def default_segmenter() -> Segmenter:
    """The process's segmenter on the repository's nlu/ files (loaded on first use)."""
    return Segmenter()


# ----------------------------------------------------------------- highlights


def highlight(text: str, terms: Iterable[str], *, limit: int | None = None) -> Markup:
    """``text`` HTML-escaped, with every occurrence of ``terms`` (case-insensitive for
    Latin letters) wrapped in ``<mark>``. With ``limit``, a window of about that many
    characters around the first match (… where cut)."""
    text = text or ""
    words = sorted({t for t in terms if t}, key=len, reverse=True)
    spans: list[tuple[int, int]] = []
    if words:
        pattern = re.compile("|".join(re.escape(w) for w in words), re.IGNORECASE)
        spans = [(m.start(), m.end()) for m in pattern.finditer(text)]
    start, end = 0, len(text)
    if limit is not None and len(text) > limit:
        first = spans[0][0] if spans else 0
        start = max(0, min(first - limit // 3, len(text) - limit))
        end = min(len(text), start + limit)
    out = [Markup("…") if start > 0 else Markup("")]
    pos = start
    for a, b in spans:
        if b <= start or a >= end:
            continue
        a, b = max(a, start), min(b, end)
        out.append(escape(text[pos:a]))
        out.append(Markup("<mark>") + escape(text[a:b]) + Markup("</mark>"))
        pos = b
    out.append(escape(text[pos:end]))
    if end < len(text):
        out.append(Markup("…"))
    return Markup("").join(out)
