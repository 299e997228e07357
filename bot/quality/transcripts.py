"""The bot's own side of a conversation for the inspectors (Q1: "the bot's own
conversations, with their transcripts"): what the caller and the bot said, read from
Rasa's tracker store when it is the local SQLite file (``HOTLINE_TRACKER_DB``), read-only.
A tracker store elsewhere (PostgreSQL in production) or a conversation no longer there
gives no lines: the sample page then shows the outcomes the store recorded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

MAX_LINES = 500


def bot_transcript(tracker_db: Path, conversation_id: str) -> list[dict[str, Any]]:
    if not tracker_db.is_file():
        return []
    try:
        conn = sqlite3.connect(f"file:{tracker_db}?mode=ro", uri=True, timeout=2)
    except sqlite3.Error:
        return []
    try:
        rows = conn.execute("SELECT type_name, timestamp, data FROM events WHERE sender_id = ? "
                            "AND type_name IN ('user', 'bot') ORDER BY id LIMIT ?",
                            (conversation_id, MAX_LINES)).fetchall()
    except sqlite3.Error as e:
        log.warning("qa.tracker_unreadable", error=str(e))
        return []
    finally:
        conn.close()
    lines = []
    for type_name, timestamp, data in rows:
        try:
            text = str((json.loads(data or "{}") or {}).get("text") or "")
        except (ValueError, AttributeError):
            continue
        if text:
            lines.append({"who": "caller" if type_name == "user" else "bot", "text": text, "at": timestamp})
    return lines
