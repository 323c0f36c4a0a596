"""Text renderings shared by the commands: the `aws --output table` layout and plain columns.

The AWS layout follows what the AWS CLI prints for a flat list of records (a centred title,
centred headers sorted by name, cells left-aligned with two spaces), so `minieks` output can be
compared with a real `aws ... --output table` line by line.
"""

from __future__ import annotations

from collections.abc import Sequence

_CELL_PADDING = 4


def _centred(text: str, width: int, left: str, right: str) -> str:
    start = width // 2 - len(text) // 2 - 1
    line = left + " " * start + text
    return line + " " * (width - len(right) - len(line)) + right


def _left(text: str, width: int, left: str, right: str) -> str:
    padding = 2 if width - (len(text) + 2 + len(left) + len(right)) >= 0 else 0
    line = left + " " * padding + text
    return line + " " * (width - len(line) - len(right)) + right


def _scaled(widths: list[int], total: int) -> list[int]:
    """Stretch natural column widths to fill `total`, rounding the way the AWS CLI does."""
    factor = total / float(sum(widths))
    scaled = [int(round(factor * w)) for w in widths]
    off_by = sum(scaled) - total
    while off_by:
        order = range(len(scaled)) if off_by > 0 else reversed(range(len(scaled)))
        for i in order:
            step = -1 if off_by > 0 else 1
            scaled[i] += step
            off_by += step
            if not off_by:
                break
    return scaled


def _rule(widths: list[int]) -> str:
    return "+" + "-" * (widths[0] - 2) + "+" + "".join("-" * (w - 1) + "+" for w in widths[1:])


def aws_table(title: str, records: Sequence[dict[str, object]]) -> str:
    """Records rendered as `aws --output table` renders a list of flat objects."""
    if not records:
        return ""
    headers = sorted(records[0])
    rows = [[str(record[h]) for h in headers] for record in records]
    natural = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    total = max(len(title) + 2, sum(w + _CELL_PADDING for w in natural) + 2)
    widths = _scaled([w + _CELL_PADDING for w in natural], total)
    lines = ["-" * total, _centred(title, total, "|", "|"), _rule(widths)]
    lines.append("".join(_centred(h, w, "|" if i == 0 else "", "|") for i, (w, h) in enumerate(zip(widths, headers))))
    lines.append(_rule(widths))
    for row in rows:
        lines.append("".join(_left(c, w, "|" if i == 0 else "", "|") for i, (w, c) in enumerate(zip(widths, row))))
    lines.append(_rule(widths))
    return "\n".join(lines) + "\n"


def columns(headers: Sequence[str], rows: Sequence[Sequence[object]], gap: int = 3) -> str:
    """Left-aligned columns with an upper-case header, as kubectl prints lists."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    out = []
    for row in cells:
        out.append((" " * gap).join(c.ljust(w) for c, w in zip(row, widths)).rstrip())
    return "\n".join(out) + "\n"
