"""Tables as files people open in a spreadsheet: CSV (UTF-8 with a byte-order mark, so
Excel reads Chinese right) and XLSX (openpyxl).

Every value is written as text or a number, never as a formula: a caller's words that
start with ``=``, ``+``, ``-`` or ``@`` would otherwise run as a formula in Excel
(CSV injection). In CSV such a cell gets a leading apostrophe; in XLSX the cell is
typed as a string.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from aiohttp import web

BOM = "\ufeff"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

Cell = str | int | float | bool | date | datetime | None


def _text(value: Cell) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime | date):
        return value.isoformat(sep=" ") if isinstance(value, datetime) else value.isoformat()
    return str(value)


def csv_bytes(headers: Sequence[str], rows: Iterable[Sequence[Cell]]) -> bytes:
    out = io.StringIO()
    out.write(BOM)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(headers)
    for row in rows:
        cells = []
        for value in row:
            text = _text(value)
            if isinstance(value, str) and text.startswith(_FORMULA_START):
                text = "'" + text
            cells.append(text)
        writer.writerow(cells)
    return out.getvalue().encode("utf-8")


def xlsx_bytes(headers: Sequence[str], rows: Iterable[Sequence[Cell]], *, sheet: str = "Sheet1") -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet[:31])
    bold = Font(bold=True)

    def cell(value: Any, *, header: bool = False) -> WriteOnlyCell:
        if isinstance(value, bool) or value is None:
            value = _text(value)
        elif isinstance(value, datetime):
            value = value.replace(tzinfo=None)  # Excel has no zones: the caller gives local time
        c = WriteOnlyCell(ws, value=value)
        if isinstance(value, str):
            c.data_type = "s"  # never a formula, whatever the text starts with
        if header:
            c.font = bold
        return c

    ws.append([cell(h, header=True) for h in headers])
    for row in rows:
        ws.append([cell(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def file_response(data: bytes, fmt: str, stem: str) -> web.Response:
    """A download: ``<stem>-<UTC time>.<fmt>``."""
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    return web.Response(body=data, headers={
        "Content-Type": CONTENT_TYPES[fmt], "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
        "Content-Disposition": f'attachment; filename="{stem}-{stamp}.{fmt}"'})
