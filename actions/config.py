"""Where the action server finds the services it calls: set by the stack runner."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class ActionConfig:
    bot_url: str
    linetest_url: str
    local_area_code: str
    line_test_max_wait_s: float
    http_timeout_s: float
    # Sent to the bot's record and inventory APIs (bot/api/auth.py); "" sends none.
    bot_token: str = ""

    @classmethod
    def from_env(cls) -> ActionConfig:
        return cls(
            bot_url=os.environ.get("HOTLINE_BOT_URL", "http://127.0.0.1:8080").rstrip("/"),
            linetest_url=os.environ.get("HOTLINE_LINETEST_URL", "http://127.0.0.1:8090").rstrip("/"),
            local_area_code=os.environ.get("HOTLINE_LOCAL_AREA_CODE", "0571"),
            line_test_max_wait_s=float(os.environ.get("HOTLINE_LINE_TEST_MAX_WAIT_S", "20")),
            http_timeout_s=float(os.environ.get("HOTLINE_ACTION_HTTP_TIMEOUT_S", "5")),
            bot_token=os.environ.get("HOTLINE_INTERNAL_API_TOKEN", ""),
        )
