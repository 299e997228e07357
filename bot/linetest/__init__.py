"""The line-test unit (design.md §3.9): the bot's HTTP client for it, and a simulator.

The unit is an external system reached only over HTTP; ``API.md`` documents the API so a
real unit can be put behind an adapter. The simulator (``simulator.py``, run by
``python -m bot linetest serve``) is imported on its own, so the bot's side stays light.
"""

from bot.linetest.client import LineTest, LineTestClient, LineTestState, LineTestUnavailable

__all__ = ["LineTest", "LineTestClient", "LineTestState", "LineTestUnavailable"]
