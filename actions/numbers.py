"""Moved to the top-level package ``telnum`` (issue 13 item 6). This alias only keeps
branches written before the move importing; new code imports telnum. Remove it once
nothing imports actions.numbers."""

from telnum import check_number, extract_digits, group_digits, keys_in, mask_number  # noqa: F401
