"""The lab run as a document: Markdown (or HTML, for a .html file) with every command, its output,
each step's explanation and time, and the board's pictures."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from minieks.lab.session import StepRecord


def markdown(records: list[StepRecord], title: str, total: float) -> str:
    out = [f"# {title}", "", "| step | title | seconds |", "|---:|---|---:|"]
    out += [f"| {r.number} | {r.title} | {r.seconds:.1f} |" for r in records]
    out += [f"| | total | {total:.1f} |", ""]
    for r in records:
        out += [f"## Step {r.number}: {r.title}", "", r.summary, ""]
        for e in r.entries:
            out += ["```console", f"$ {e.command}", e.output.rstrip("\n"), "```", ""]
        out += [f"> {n}" for n in r.notes]
        if r.notes:
            out.append("")
        out += [f"![board after step {r.number}]({p})" for p in r.pictures]
        out.append(f"*{r.seconds:.1f} s*")
        out.append("")
    return "\n".join(out) + "\n"


def to_html(records: list[StepRecord], title: str, total: float) -> str:
    rows = "".join(f"<tr><td>{r.number}</td><td>{html.escape(r.title)}</td><td>{r.seconds:.1f}</td></tr>"
                   for r in records)
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             "<style>body{font-family:sans-serif;max-width:1100px;margin:auto}pre{background:#111;color:#ddd;"
             "padding:8px;overflow-x:auto}blockquote{color:#345}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><table border='1' cellpadding='4'><tr><th>step</th><th>title</th>"
             f"<th>seconds</th></tr>{rows}<tr><td></td><td>total</td><td>{total:.1f}</td></tr></table>"]
    for r in records:
        parts.append(f"<h2>Step {r.number}: {html.escape(r.title)}</h2><p>{html.escape(r.summary)}</p>")
        for e in r.entries:
            parts.append(f"<pre>$ {html.escape(e.command)}\n{html.escape(e.output)}</pre>")
        parts += [f"<blockquote>{html.escape(n)}</blockquote>" for n in r.notes]
        for p in r.pictures:
            data = base64.b64encode(Path(p).read_bytes()).decode()
            parts.append(f"<img alt='board' style='max-width:100%' src='data:image/png;base64,{data}'>")
        parts.append(f"<p><em>{r.seconds:.1f} s</em></p>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write(path: Path, records: list[StepRecord], title: str, total: float) -> None:
    text = to_html(records, title, total) if path.suffix.lower() in (".html", ".htm") else \
        markdown(records, title, total)
    path.write_text(text)
