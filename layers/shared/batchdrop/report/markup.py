"""The report's HTML pieces: every text a user wrote or Batch said goes through `text` (escaped), and a
link only ever points at an https address (a log in the AWS console); the page loads nothing."""

from __future__ import annotations

import html
from collections.abc import Iterable
from datetime import UTC, datetime

STYLE = """
:root{--ok:#1a7f37;--bad:#cf222e;--run:#0969da;--wait:#8c959f;--stop:#bf8700;--ink:#1f2328;--muted:#59636e;
--line:#d1d9e0;--bg:#fff;--soft:#f6f8fa}
*{box-sizing:border-box}
body{margin:0;font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
main{max-width:1100px;margin:0 auto;padding:16px}
h1{font-size:1.4em;margin:.2em 0 .4em;overflow-wrap:anywhere}
h2{font-size:1.15em;margin:1.6em 0 .5em;border-bottom:1px solid var(--line);padding-bottom:.2em}
h3{font-size:1em;margin:1.2em 0 .4em;overflow-wrap:anywhere}
p,li,dd{overflow-wrap:anywhere}
.muted{color:var(--muted)}
.badge{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;font-size:.85em;font-weight:600;
vertical-align:middle}
.succeeded{background:var(--ok)}.failed,.rejected,.lost{background:var(--bad)}
.running,.submitted,.submitting{background:var(--run)}.queued{background:var(--wait)}.cancelled{background:var(--stop)}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2em 1em;margin:0}
dl.facts dt{color:var(--muted)}dl.facts dd{margin:0;min-width:0}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;width:max-content;min-width:100%;font-size:.92em}
th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid var(--line);vertical-align:top}
th{background:var(--soft);font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.total td{font-weight:600;border-top:2px solid var(--line)}
ol.timeline{list-style:none;margin:0;padding:0}
ol.timeline li{display:grid;grid-template-columns:minmax(0,16em) minmax(0,1fr);gap:.6em;align-items:center;
padding:.25em 0;border-bottom:1px dashed var(--line)}
.bar-label{font-size:.9em;min-width:0}
.bar-label small{display:block;color:var(--muted)}
svg.track{width:100%;height:18px;display:block;background:var(--soft);border-radius:3px}
svg.track .queued{fill:var(--wait);opacity:.55}
svg.track .run-succeeded{fill:var(--ok)}svg.track .run-failed{fill:var(--bad)}
svg.track .run-running{fill:var(--run)}svg.track .run-cancelled{fill:var(--stop)}svg.track .run-queued{fill:var(--wait)}
li.reused svg.track{background:repeating-linear-gradient(45deg,var(--soft),var(--soft) 6px,#e4e8ec 6px,#e4e8ec 12px)}
.axis{display:grid;grid-template-columns:minmax(0,16em) minmax(0,1fr);gap:.6em;font-size:.8em;color:var(--muted)}
.axis .ticks{display:flex;justify-content:space-between;gap:.5em;min-width:0}
.tag{display:inline-block;font-size:.78em;padding:0 .45em;border-radius:.6em;background:#ddf4ff;color:#0550ae;
margin:.1em .2em .1em 0}
.tag.recovered{background:#fff1e5;color:#953800}.tag.reused{background:#eef1f4;color:#424a53}
.legend{font-size:.85em;color:var(--muted);display:flex;flex-wrap:wrap;gap:.3em 1em;margin:.4em 0}
.legend i{display:inline-block;width:1.2em;height:.8em;border-radius:2px;vertical-align:middle;margin-right:.3em}
svg.chart{width:100%;max-width:640px;height:auto;display:block}
svg.chart text{font-size:11px;fill:var(--muted)}
ul.failures li{margin:.3em 0}
code{font:.9em ui-monospace,SFMono-Regular,Menlo,monospace;background:var(--soft);padding:0 .25em;border-radius:3px}
@media (max-width:640px){ol.timeline li,.axis{grid-template-columns:minmax(0,1fr)}
dl.facts{grid-template-columns:minmax(0,1fr)}dl.facts dd{margin-bottom:.4em}main{padding:10px}}
"""
"""The page's only style: inline, no fonts or images fetched."""
CONTENT_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
"""The page may load nothing: a report opened from S3, Slack or a laptop with no network shows all of it."""


def text(value: object) -> str:
    """Any value as HTML text: escaped (a spec name or a reason may hold `<script>`)."""
    return html.escape(str(value), quote=True)


def link(url: str | None, label: str) -> str:
    """A link to an https address (a log in the console); anything else is shown as text, not followed."""
    if url and url.startswith("https://"):
        return f'<a href="{text(url)}" rel="noopener noreferrer">{text(label)}</a>'
    return text(label)


def when(moment: datetime | None) -> str:
    return "—" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def hours(value: float) -> str:
    return f"{value:,.2f}"


def dollars(value: float | None) -> str:
    return "—" if value is None else f"${value:,.2f}"


def table(head: Iterable[str], rows: Iterable[Iterable[str]], *, numeric: frozenset[int] = frozenset()) -> str:
    """A table of cells already made HTML, scrolled sideways on its own on a narrow screen (the page never is).
    A row whose first cell starts with `<!--total-->` is the total row."""
    heads = "".join(f"<th{_num(index, numeric)}>{cell}</th>" for index, cell in enumerate(head))
    body = []
    for row in rows:
        cells = list(row)
        total = bool(cells) and cells[0].startswith("<!--total-->")
        tds = "".join(f"<td{_num(index, numeric)}>{cell}</td>" for index, cell in enumerate(cells))
        body.append(f'<tr class="total">{tds}</tr>' if total else f"<tr>{tds}</tr>")
    return f'<div class="scroll"><table><thead><tr>{heads}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _num(index: int, numeric: frozenset[int]) -> str:
    return ' class="num"' if index in numeric else ""
