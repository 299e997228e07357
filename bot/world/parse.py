"""Reading a world file, with errors that point at the line (design.md §3.10).

The file is composed into a YAML node tree first (which keeps the line of every key
and value), then validated by the pydantic :class:`~bot.world.schema.World` model;
each validation error's location (``lines``, 3, ``number``) is walked down the node
tree to find its line. Cross-checks the model cannot make alone (every line, open
fault and work served by a known exchange; canonical numbers) are made here too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from bot.world.schema import World
from telnum import check_number


class WorldFileError(Exception):
    """Every problem in a world file, one ``file:line: field: message`` per line."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__("\n".join(errors))


def parse_world_file(path: str | Path, *, now: datetime | None = None) -> World:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise WorldFileError(p.name, [f"{p.name}: cannot read the file: {e}"]) from e
    return parse_world_text(text, p.name, now=now)


def parse_world_text(text: str, source_name: str = "world.yml", *, now: datetime | None = None) -> World:
    """``now`` anchors the file's relative times (``opened: -5h``); default: this moment."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        message = f"{source_name}:{line}: YAML syntax: {e.problem or e}"
        if e.context_mark is not None and e.problem_mark is not None and e.context_mark.line != e.problem_mark.line:
            message += f" ({e.context or 'the construct'} started on line {e.context_mark.line + 1})"
        raise WorldFileError(source_name, [message]) from e
    except yaml.YAMLError as e:
        raise WorldFileError(source_name, [f"{source_name}:1: YAML: {e}"]) from e
    if root is None or not isinstance(data, dict):
        line = root.start_mark.line + 1 if root is not None else 1
        raise WorldFileError(source_name, [f"{source_name}:{line}: the world file must be a mapping "
                                           "(exchanges:, lines:, …)"])
    errors = [f"{source_name}:{line}: {path}: duplicate key" for line, path in _duplicate_keys(root, ())]
    try:
        world = World.model_validate(data, context={"now": now or datetime.now(UTC)})
    except ValidationError as e:
        # The model's own whole-file checks (duplicates) carry no location; say where.
        dupes = _raw_duplicates(data)
        for err in e.errors():
            loc = tuple(err["loc"])
            if not loc and dupes:
                errors += [f"{source_name}:{_line_of(root, d_loc)}: {_path(d_loc)}: {msg}" for d_loc, msg in dupes]
                dupes = []
                continue
            line = _line_of(root, loc)
            errors.append(f"{source_name}:{line}: {_path(loc) or '(file)'}: {_message(err)}")
        raise WorldFileError(source_name, errors) from e
    errors += [f"{source_name}:{_line_of(root, loc)}: {_path(loc)}: {msg}" for loc, msg in _cross_checks(world)]
    if errors:
        raise WorldFileError(source_name, errors)
    return world


def _message(err: Any) -> str:
    msg = str(err["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            msg = msg[len(prefix):]
    if err["type"] == "extra_forbidden":
        msg = "unknown field (check the spelling)"
    return msg


def _path(loc: tuple[Any, ...]) -> str:
    """('lines', 3, 'number') → lines[3].number"""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the deepest node on ``loc``; a missing field points at its parent."""
    node: yaml.Node = root
    line = node.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
            if match is None:
                break
            key, node = match
            line = key.start_mark.line + 1  # the key's line reads best, also for nested blocks
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _duplicate_keys(node: yaml.Node, loc: tuple[Any, ...]) -> list[tuple[int, str]]:
    """PyYAML silently keeps the last of two equal keys; a world file author means neither."""
    found: list[tuple[int, str]] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[Any] = set()
        for key, value in node.value:
            k = getattr(key, "value", None)
            if k in seen:
                found.append((key.start_mark.line + 1, _path((*loc, k))))
            seen.add(k)
            found += _duplicate_keys(value, (*loc, k))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            found += _duplicate_keys(item, (*loc, i))
    return found


def _raw_duplicates(data: dict[str, Any]) -> list[tuple[tuple[Any, ...], str]]:
    found: list[tuple[tuple[Any, ...], str]] = []
    for section, key in (("lines", "number"), ("open_faults", "id")):
        items = data.get(section)
        if not isinstance(items, list):
            continue
        first: dict[Any, int] = {}
        for i, item in enumerate(items):
            value = item.get(key) if isinstance(item, dict) else None
            if value is None:
                continue
            if value in first:
                found.append(((section, i, key), f"{value} is listed twice (first at {section}[{first[value]}])"))
            first.setdefault(value, i)
    return found


def _cross_checks(world: World) -> list[tuple[tuple[Any, ...], str]]:
    """Consistency across sections: numbers canonical and served by a known exchange (A4)."""
    problems: list[tuple[tuple[Any, ...], str]] = []

    def canonical(number: str, loc: tuple[Any, ...]) -> None:
        check = check_number(number)
        if check.error is not None or check.canonical != number:
            problems.append((loc, f"{number} is not a canonical number ({check.error or 'use ' + str(check.canonical)}); "
                                  "fixed lines with area code (057187654321), mobiles as 11 digits"))
        elif world.exchange_for(number) is None:
            problems.append((loc, f"no exchange prefix serves {number}; add its exchange under exchanges"))

    prefixes = [e.prefix for e in world.exchanges]
    for i, e in enumerate(world.exchanges):
        if prefixes.index(e.prefix) != i:
            problems.append((("exchanges", i, "prefix"), f"prefix {e.prefix} is listed twice"))
    seen: dict[str, int] = {}
    for i, line in enumerate(world.lines):
        if line.number in seen:
            problems.append((("lines", i, "number"), f"{line.number} is listed twice (first at lines[{seen[line.number]}])"))
        seen.setdefault(line.number, i)
        canonical(line.number, ("lines", i, "number"))
    work_ids: set[str] = set()
    for i, w in enumerate(world.engineering_works):
        if w.id in work_ids:
            problems.append((("engineering_works", i, "id"), f"work id {w.id} is used twice"))
        work_ids.add(w.id)
        for j, n in enumerate(w.lines):
            canonical(n, ("engineering_works", i, "lines", j))
    fault_ids: dict[str, int] = {}
    open_lines: dict[str, int] = {}
    for i, f in enumerate(world.open_faults):
        if f.id in fault_ids:
            problems.append((("open_faults", i, "id"), f"fault id {f.id} is used twice"))
        fault_ids.setdefault(f.id, i)
        if f.line in open_lines:
            problems.append((("open_faults", i, "line"),
                             f"{f.line} already has an open fault (open_faults[{open_lines[f.line]}])"))
        open_lines.setdefault(f.line, i)
        canonical(f.line, ("open_faults", i, "line"))
    centre_ids = [c.id for c in world.measurement_centres]
    for i, c in enumerate(world.measurement_centres):
        if centre_ids.index(c.id) != i:
            problems.append((("measurement_centres", i, "id"), f"centre id {c.id} is used twice"))
    return problems
