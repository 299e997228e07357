"""The hotline channel's language answer (nlu/channels/hotline.py): taken from the
tracker Rasa saves at the end of the turn, read from the store only when not seen."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "nlu"))

from channels.hotline import _LanguageOnSave  # noqa: E402


class Tracker:
    def __init__(self, sender_id: str, language: str | None) -> None:
        self.sender_id = sender_id
        self.slots = {"language": language}

    def get_slot(self, name: str) -> Any:
        return self.slots[name]


class Store:
    def __init__(self) -> None:
        self.saved: dict[str, Tracker] = {}
        self.reads = 0

    async def save(self, tracker: Tracker) -> None:
        self.saved[tracker.sender_id] = tracker

    async def retrieve(self, sender: str) -> Tracker | None:
        self.reads += 1
        return self.saved.get(sender)


def test_the_language_comes_from_the_saved_tracker_and_the_store_only_when_unseen() -> None:
    async def run() -> None:
        store = Store()
        await store.save(Tracker("before", "en"))  # saved before the channel watched
        watcher = _LanguageOnSave(store)
        assert await watcher.language("before") == "en" and store.reads == 1
        assert await watcher.language("nobody") is None and store.reads == 2
        await store.save(Tracker("c1", "zh"))  # what the processor calls at a turn's end
        await store.save(Tracker("c1", "en"))
        assert await watcher.language("c1") == "en" and store.reads == 2
        assert store.saved["c1"].get_slot("language") == "en"  # still saved for real
        watcher.MAX_CONVERSATIONS = 2
        for sender in ("c2", "c3"):
            await store.save(Tracker(sender, "zh"))
        assert list(watcher.languages) == ["c2", "c3"]  # the oldest forgotten, not the store

    asyncio.run(run())


def test_the_watcher_is_installed_once_per_store() -> None:
    from channels.hotline import _language_of

    async def run() -> None:
        store = Store()
        request = SimpleNamespace(app=SimpleNamespace(ctx=SimpleNamespace(agent=SimpleNamespace(tracker_store=store))))
        assert await _language_of(request, "x") is None  # type: ignore[arg-type]
        first = store._hotline_languages  # type: ignore[attr-defined]
        await _language_of(request, "x")  # type: ignore[arg-type]
        assert store._hotline_languages is first  # type: ignore[attr-defined]
        await store.save(Tracker("x", "en"))
        assert await _language_of(request, "x") == "en"  # type: ignore[arg-type]

    asyncio.run(run())
