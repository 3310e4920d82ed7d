"""The run report as one self-contained HTML page: inline CSS, figures as data URIs, no scripts."""

import base64
import html
import re

from ._tables import SECTIONS, Code, Diagram, Figure, Subheading, Table, sections, title

__all__ = ["render_html"]

# The page must render offline and from a mail attachment: system fonts, no external files.
_STYLE = """
body { margin: 0; color: #1f2328; background: #fff; line-height: 1.5;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 72rem; margin: 0 auto; padding: 1.5rem; }
nav { display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; padding-bottom: 0.8rem;
  border-bottom: 1px solid #d0d7de; }
h2 { margin-top: 2.5rem; border-bottom: 1px solid #d0d7de; padding-bottom: 0.2rem; }
a { color: #0969da; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.92rem; }
th, td { border: 1px solid #d0d7de; padding: 0.3rem 0.65rem; text-align: left;
  vertical-align: top; }
th { background: #eef1f4; }
tbody tr:nth-child(even) { background: #f6f8fa; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
figure { margin: 1rem 0; }
img, svg { max-width: 100%; height: auto; }
figcaption { color: #57606a; font-size: 0.9rem; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.8rem;
  overflow-x: auto; font-size: 0.85rem;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
"""

# An XML declaration, doctype or comment before the root element; invalid inside HTML.
_SVG_PROLOG = re.compile(r"\A\s*(?:(?:<\?xml.*?\?>|<!DOCTYPE[^>]*>|<!--.*?-->)\s*)*", re.DOTALL)


def render_html(metrics: dict, figures: dict[str, bytes], rules_text: dict[str, str] | None = None,
                svgs: dict[str, str] | None = None) -> str:
    """The run report as one HTML5 page that needs no other file and no network.

    Parameters
    ----------
    metrics : dict
        The run's metrics (the content of ``RUN/metrics.json``).
    figures : dict of str to bytes
        Figure key (``"fidelity_vs_complexity"``, ``"per_class_fidelity"``) -> PNG bytes,
        inlined as data URIs. Figures not given are left out.
    rules_text : dict of str to str or None, default=None
        Surrogate name -> its rules as plain text, shown escaped in ``<pre>``.
    svgs : dict of str to str or None, default=None
        Surrogate name -> an SVG diagram (trusted markup, e.g. from Graphviz), inlined as is
        after its XML declaration and doctype are removed.

    Returns
    -------
    str
        The page. Sections without content are left out.
    """
    content = sections(metrics, figures, rules_text, svgs)
    page_title = html.escape(title(metrics))
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en">',
        '<head>\n<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{page_title}</title>\n<style>{_STYLE}</style>\n</head>",
        f"<body>\n<main>\n<h1>{page_title}</h1>",
        _nav(content),
        *(_section(section_id, blocks) for section_id, blocks in content.items()),
        "</main>\n</body>\n</html>\n",
    ])


def _nav(content: dict[str, list]) -> str:
    links = "".join(f'<a href="#{section_id}">{html.escape(SECTIONS[section_id][0])}</a>'
                    for section_id in content)
    return f"<nav>{links}</nav>"


def _section(section_id: str, blocks: list) -> str:
    heading, intro = SECTIONS[section_id]
    return "\n".join([f'<section id="{section_id}">', f"<h2>{html.escape(heading)}</h2>",
                      f"<p>{html.escape(intro)}</p>",
                      *(_RENDER[type(block)](block) for block in blocks), "</section>"])


def _cell(text: str, numeric: bool, tag: str) -> str:
    attributes = ' class="num"' if numeric else ""
    return f"<{tag}{attributes}>{html.escape(text)}</{tag}>"


def _row(cells, numeric, tag: str) -> str:
    return "<tr>" + "".join(_cell(cell, num, tag) for cell, num in zip(cells, numeric)) + "</tr>"


def _table(table: Table) -> str:
    rows = "\n".join(_row(row, table.numeric, "td") for row in table.rows)
    return (f'<div class="scroll"><table>\n<thead>{_row(table.header, table.numeric, "th")}'
            f"</thead>\n<tbody>\n{rows}\n</tbody>\n</table></div>")


def _figure(figure: Figure) -> str:
    data = base64.b64encode(figure.source).decode("ascii")
    caption = html.escape(figure.caption)
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
            f"<figcaption>{caption}</figcaption></figure>")


_RENDER = {
    Table: _table,
    Subheading: lambda block: f"<h3>{html.escape(block.text)}</h3>",
    Figure: _figure,
    Code: lambda block: f"<pre>{html.escape(block.text)}</pre>",
    Diagram: lambda block: f'<div class="scroll">{_SVG_PROLOG.sub("", block.svg)}</div>',
}
