"""The run report as Markdown (``report.md``): tables, figure links and rules in code fences."""

import re
from urllib.parse import quote

from ._tables import (SECTIONS, Code, Evidence, Figure, Gallery, Note, Subheading, Table, sections,
                      title)

__all__ = ["render_markdown"]

# Characters that start Markdown syntax inside a line (``$`` is math on GitHub); ``|`` would also
# split a table cell.
_SPECIAL = re.compile(r"([\\`*_<>\[\]|&~$])")


def render_markdown(metrics: dict, figure_paths: dict[str, str] | None = None,
                    rules_text: dict[str, str] | None = None,
                    evidence_paths: dict[str, str] | None = None) -> str:
    """The run report as Markdown text; the caller writes it, usually to ``RUN/report.md``.

    Parameters
    ----------
    metrics : dict
        The run's metrics (the content of ``RUN/metrics.json``).
    figure_paths : dict of str to str or None, default=None
        Figure key (``"fidelity_vs_complexity"``, ``"per_class_fidelity"``, ``"deferral"``,
        ``"reliability"``) -> path of its PNG, relative to the report. Figures not named here
        are left out.
    rules_text : dict of str to str or None, default=None
        Surrogate name -> its rules as plain text, shown in code fences.
    evidence_paths : dict of str to str or None, default=None
        Feature name -> path of its prototype strip, relative to the report; each surrogate's
        features are listed with their strips after its rule table.

    Returns
    -------
    str
        The report, ending in a newline. Sections without content are left out; disagreements
        are a table, without images.
    """
    blocks = [f"# {_escape(title(metrics))}"]
    evidence = {name: {"source": path} for name, path in (evidence_paths or {}).items()}
    content_by_section = sections(metrics, figure_paths or {}, rules_text, evidence=evidence)
    for section_id, content in content_by_section.items():
        heading, intro = SECTIONS[section_id]
        blocks += [f"## {_escape(heading)}", _escape(intro)]
        blocks += [_RENDER[type(block)](block) for block in content]
    return "\n\n".join(blocks) + "\n"


def _escape(text: str) -> str:
    """``text`` as literal Markdown on one line: specials backslash-escaped, newlines as spaces."""
    return _SPECIAL.sub(r"\\\1", " ".join(str(text).splitlines()))


def _row(cells) -> str:
    return _joined(map(_escape, cells))


def _joined(markdown_cells) -> str:
    return "| " + " | ".join(markdown_cells) + " |"


def _table(table: Table, rows: list[str] | None = None) -> str:
    """``table`` as Markdown; ``rows``, when given, are its body rows already rendered."""
    rule = "|" + "|".join("---:" if numeric else "---" for numeric in table.numeric) + "|"
    return "\n".join([_row(table.header), rule, *(map(_row, table.rows) if rows is None else rows)])


def _code(code: Code) -> str:
    """The text in a backtick fence longer than any backtick run in it, so it cannot end early."""
    longest = max(map(len, re.findall(r"`+", code.text)), default=0)
    fence = "`" * max(3, longest + 1)
    body = code.text.rstrip("\n")
    return f"{fence}\n{body}\n{fence}"


def _image(alt: str, path: str) -> str:
    return f"![{_escape(alt)}]({quote(path)})"


def _evidence(evidence: Evidence) -> str:
    """The evidence table; the last cell links the strip before its caption."""
    rows = [_joined([*map(_escape, facts), _strip_cell(facts[0], path, caption)])
            for (*facts, caption), path in zip(evidence.table.rows, evidence.images)]
    return _table(evidence.table, rows)


def _strip_cell(feature: str, path: str | None, caption: str) -> str:
    parts = [] if path is None else [_image(f"prototypes of {feature}", path)]
    return " ".join(parts + ([_escape(caption)] if caption else []))


_RENDER = {
    Table: _table,
    Subheading: lambda block: f"### {_escape(block.text)}",
    Note: lambda block: _escape(block.text),
    Figure: lambda block: _image(block.caption, block.source),
    Code: _code,
    Gallery: lambda block: _table(block.table),
    Evidence: _evidence,
}
