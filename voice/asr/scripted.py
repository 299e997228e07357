"""A scripted ``Recogniser`` for tests of code that listens (the call session): the
caller's words are data, no model needed.

    rec = ScriptedRecogniser(["幺三八", Transcript("是", 0.9)], partials=["幺"])
    await rec.begin(["一", "幺"]); await rec.feed(pcm); (await rec.end()).text == "幺三八"

Each ``end`` returns the next scripted result (a ``str`` becomes a ``Transcript`` with
confidence 1.0); when the script runs out, ``end`` returns an empty transcript. ``feed``
returns the next scripted partial, if any, once per utterance per partial.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from voice.asr.recognizer import Transcript


class ScriptedRecogniser:
    def __init__(
        self, results: Iterable[Transcript | str] = (), *, partials: Iterable[str] = ()
    ) -> None:
        self._results: deque[Transcript | str] = deque(results)
        self._partials = list(partials)
        self.grammars: list[list[str] | None] = []
        """The grammar of every ``begin``, in order."""
        self.fed: list[bytes] = []
        """Audio fed during the current (or last) utterance."""
        self.closed = False
        self.in_utterance = False
        self._partial_index = 0

    async def begin(self, grammar: list[str] | None) -> None:
        if self.closed:
            raise RuntimeError("ScriptedRecogniser is closed")
        self.grammars.append(grammar)
        self.fed = []
        self.in_utterance = True
        self._partial_index = 0

    async def feed(self, pcm: bytes) -> str | None:
        if not self.in_utterance or self.closed:
            return None
        self.fed.append(pcm)
        if self._partial_index < len(self._partials):
            self._partial_index += 1
            return self._partials[self._partial_index - 1]
        return None

    async def end(self) -> Transcript:
        if not self.in_utterance or self.closed:
            return Transcript("", None)
        self.in_utterance = False
        audio_ms = sum(len(p) for p in self.fed) / 16.0  # 8 kHz L16: 16 bytes per ms
        grammar_used = bool(self.grammars and self.grammars[-1])
        if not self._results:
            return Transcript("", None, [], grammar_used, audio_ms)
        item = self._results.popleft()
        if isinstance(item, Transcript):
            return item
        return Transcript(item, 1.0 if item else None, [], grammar_used, audio_ms)

    async def close(self) -> None:
        self.closed = True
        self.in_utterance = False
