"""The run report as one self-contained HTML page: inline CSS, figures as data URIs, no scripts."""

import base64
import html
import re

from ._tables import (SECTIONS, Badge, Code, Diagram, Evidence, Figure, Gallery, Note, Subheading,
                      Table, sections, title)

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
tr.flagged { background: #fff8c5 !important; }
.badge { display: inline-block; padding: 0 0.45rem; border-radius: 1rem; font-size: 0.8rem;
  background: #9a6700; color: #fff; }
.gallery { display: grid; grid-template-columns: repeat(auto-fill, minmax(14rem, 1fr));
  gap: 0.8rem; margin: 0.5rem 0 1.5rem; }
.card { margin: 0; padding: 0.6rem; border: 1px solid #d0d7de; border-radius: 6px; }
.card img { display: block; width: 64px; image-rendering: pixelated; margin-bottom: 0.4rem; }
.card dl { display: grid; grid-template-columns: auto 1fr; gap: 0 0.6rem; margin: 0;
  font-size: 0.85rem; }
.card dt { color: #57606a; }
.card dd { margin: 0; overflow-wrap: anywhere; }
img.strip { display: block; image-rendering: pixelated; }
.caption { color: #57606a; font-size: 0.8rem; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.8rem;
  overflow-x: auto; font-size: 0.85rem;
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
"""

# An XML declaration, doctype or comment before the root element; invalid inside HTML.
_SVG_PROLOG = re.compile(r"\A\s*(?:(?:<\?xml.*?\?>|<!DOCTYPE[^>]*>|<!--.*?-->)\s*)*", re.DOTALL)


def render_html(metrics: dict, figures: dict[str, bytes], rules_text: dict[str, str] | None = None,
                svgs: dict[str, str] | None = None,
                images: dict[int, bytes] | None = None,
                evidence: dict[str, dict] | None = None) -> str:
    """The run report as one HTML5 page that needs no other file and no network.

    Parameters
    ----------
    metrics : dict
        The run's metrics (the content of ``RUN/metrics.json``).
    figures : dict of str to bytes
        Figure key (``"fidelity_vs_complexity"``, ``"per_class_fidelity"``, ``"deferral"``,
        ``"reliability"``) -> PNG bytes, inlined as data URIs. Figures not given are left out.
    rules_text : dict of str to str or None, default=None
        Surrogate name -> its rules as plain text, shown escaped in ``<pre>``.
    svgs : dict of str to str or None, default=None
        Surrogate name -> an SVG diagram (trusted markup, e.g. from Graphviz), inlined as is
        after its XML declaration and doctype are removed.
    images : dict of int to bytes or None, default=None
        Sample index -> PNG bytes of its image (see :func:`~hybrid.report.thumbnail_png`),
        shown on the disagreement cards; a card whose sample has none shows no image.
    evidence : dict of str to dict or None, default=None
        Feature name -> ``png`` (PNG bytes of its prototype strip, see
        :func:`hybrid.evidence.evidence_strip_png`), ``prototypes`` (sample ids) and
        ``activations``, shown with each surrogate's rules next to the features they read.

    Returns
    -------
    str
        The page. Sections without content are left out.
    """
    sources = {name: {**entry, "source": entry["png"]} for name, entry in (evidence or {}).items()}
    content = sections(metrics, figures, rules_text, svgs, images, sources)
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


def _text(text: str) -> str:
    """Escaped text; a :class:`Badge` as a badge."""
    escaped = html.escape(text)
    return f'<span class="badge">{escaped}</span>' if isinstance(text, Badge) else escaped


def _cell(text: str, numeric: bool, tag: str) -> str:
    attributes = ' class="num"' if numeric else ""
    return f"<{tag}{attributes}>{_text(text)}</{tag}>"


def _row(cells, numeric, tag: str) -> str:
    flagged = any(isinstance(cell, Badge) and cell for cell in cells)
    opening = '<tr class="flagged">' if flagged else "<tr>"
    return opening + "".join(_cell(cell, num, tag) for cell, num in zip(cells, numeric)) + "</tr>"


def _table(table: Table, rows: list[str] | None = None) -> str:
    """``table`` as HTML; ``rows``, when given, are its body rows already rendered."""
    if rows is None:
        rows = [_row(row, table.numeric, "td") for row in table.rows]
    body = "\n".join(rows)
    return (f'<div class="scroll"><table>\n<thead>{_row(table.header, table.numeric, "th")}'
            f"</thead>\n<tbody>\n{body}\n</tbody>\n</table></div>")


def _img(png: bytes, alt: str, css_class: str | None = None) -> str:
    data = base64.b64encode(png).decode("ascii")
    attributes = "" if css_class is None else f' class="{css_class}"'
    return f'<img{attributes} src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'


def _figure(figure: Figure) -> str:
    return (f"<figure>{_img(figure.source, figure.caption)}"
            f"<figcaption>{html.escape(figure.caption)}</figcaption></figure>")


def _card(header, cells, png: bytes | None) -> str:
    """One sample: its image (when there is one), then each fact as a term and its value."""
    image = "" if png is None else _img(png, f"{header[0]} {cells[0]}")
    facts = "".join(f"<dt>{html.escape(term)}</dt><dd>{_text(value)}</dd>"
                    for term, value in zip(header, cells))
    return f'<figure class="card">{image}<dl>{facts}</dl></figure>'


def _gallery(gallery: Gallery) -> str:
    cards = "\n".join(_card(gallery.table.header, row, png)
                      for row, png in zip(gallery.table.rows, gallery.images))
    return f'<div class="gallery">\n{cards}\n</div>'


def _evidence_row(cells, png: bytes | None) -> str:
    """A feature's name and where it is read, then its strip above the strip's caption."""
    *facts, caption = cells
    strip = "" if png is None else _img(png, f"prototypes of {facts[0]}", "strip")
    return ("<tr>" + "".join(f"<td>{html.escape(fact)}</td>" for fact in facts)
            + f'<td>{strip}<span class="caption">{html.escape(caption)}</span></td></tr>')


def _evidence(evidence: Evidence) -> str:
    return _table(evidence.table, [_evidence_row(row, png) for row, png
                                   in zip(evidence.table.rows, evidence.images)])


_RENDER = {
    Table: _table,
    Subheading: lambda block: f"<h3>{html.escape(block.text)}</h3>",
    Note: lambda block: f"<p>{html.escape(block.text)}</p>",
    Figure: _figure,
    Gallery: _gallery,
    Evidence: _evidence,
    Code: lambda block: f"<pre>{html.escape(block.text)}</pre>",
    Diagram: lambda block: f'<div class="scroll">{_SVG_PROLOG.sub("", block.svg)}</div>',
}
