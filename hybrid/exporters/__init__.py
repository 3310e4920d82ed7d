"""Exporters: IR model -> text (plain, Markdown, JSON, DOT, SVG) for people, and code (a
standalone Python module, an SQL query) that predicts exactly like the model.

Each exporter is a function ``model -> str`` that never writes a file: the caller decides
where the text goes, using :data:`SUFFIXES` for the file name. Configs name exporters through
:data:`EXPORTERS`. Nothing here imports torch or scikit-learn, so a surrogate loaded from JSON
exports anywhere.
"""

from ..ir import InterpretableModel
from ..jsonio import to_json
from ..registry import Registry
from .dot import dot_available, render_svg, to_dot, to_svg
from .markdown import escape_markdown, to_markdown
from .python import to_python
from .sql import to_sql, to_sql_expression
from .text import to_text

__all__ = ["EXPORTERS", "SUFFIXES", "to_text", "to_markdown", "to_dot", "to_svg", "to_json_text",
           "to_python", "to_sql", "to_sql_expression", "render_svg", "dot_available",
           "escape_markdown"]


def to_json_text(model: InterpretableModel) -> str:
    """The surrogate file's text (:func:`hybrid.jsonio.to_json`), without metadata."""
    return to_json(model)


EXPORTERS = Registry("exporter")
EXPORTERS.register("text", to_text)
EXPORTERS.register("markdown", to_markdown)
EXPORTERS.register("json", to_json_text)
EXPORTERS.register("dot", to_dot)
EXPORTERS.register("svg", to_svg)
EXPORTERS.register("python", to_python)
EXPORTERS.register("sql", to_sql)

#: File suffix of each exporter's output.
SUFFIXES = {"text": ".txt", "markdown": ".md", "json": ".json", "dot": ".dot", "svg": ".svg",
            "python": ".py", "sql": ".sql"}
