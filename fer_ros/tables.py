"""Tables as CSV and Markdown: one writer for every report (evaluate, sweep, compare, eval-bag).

``write_table(rows, "metrics.csv", "metrics.md")`` writes dict rows (the first row's keys are the columns);
``markdown_table(header, rows, fmt)`` gives the Markdown lines for any report that embeds a table in its text.
CSV cells keep full precision; Markdown cells go through ``fmt`` (default: floats with 4 digits, None and NaN as n/a).
"""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any, Callable, Sequence

MISSING = "n/a"  # how an undefined number (None, NaN) reads in a Markdown table


def format_cell(value: Any, digits: int = 4) -> str:
    """A Markdown cell: floats with ``digits`` decimals, None and NaN as n/a, anything else as str()."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return MISSING
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]],
                   fmt: Callable[[Any, str], str] | None = None) -> list[str]:
    """Markdown lines of a table; ``fmt(value, column)`` formats a cell (default :func:`format_cell`)."""
    cell = fmt or (lambda value, _column: format_cell(value))
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v, c) for v, c in zip(row, header)) + " |" for row in rows]
    return lines


def write_csv(header: Sequence[str], rows: Sequence[Sequence[Any]], path: Path | str) -> Path:
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return Path(path)


def write_table(rows: list[dict[str, Any]], csv_path: Path | str, md_path: Path | str | None = None) -> None:
    """The same dict rows as CSV and (when ``md_path`` is given) as a Markdown table; nothing for no rows."""
    if not rows:
        return
    header = list(rows[0])
    values = [[r[k] for k in header] for r in rows]
    write_csv(header, values, csv_path)
    if md_path is not None:
        Path(md_path).write_text("\n".join(markdown_table(header, values)) + "\n")
