"""The report stage: a run's metrics dict as figures, a Markdown report and one HTML page.

The split follows what each part needs. :mod:`~hybrid.report.plots` is the only module that
draws (matplotlib's object API, so no backend is chosen) and returns PNG bytes. The two
renderers take plain data and return text, like scikit-learn's exporters, so the caller decides
where files go: Markdown links figures by relative path, HTML inlines their bytes so the page
stands alone. Both lay out one shared outline (``_tables``), so they cannot disagree on a
number. Nothing here imports torch or scikit-learn: a report can be rebuilt from
``metrics.json`` alone.

Examples
--------
>>> figures = {"fidelity_vs_complexity": fidelity_vs_complexity_png(metrics),
...            "per_class_fidelity": per_class_fidelity_png(metrics),
...            "deferral": deferral_png(metrics),
...            "reliability": reliability_png(metrics)}  # doctest: +SKIP
>>> images = {17: thumbnail_png(digit_17)}  # sample index -> PNG  # doctest: +SKIP
>>> evidence = {"dim_37": {"png": strip, "prototypes": [17, 4],
...                        "activations": [3.2, 2.9]}}  # doctest: +SKIP
>>> page = render_html(metrics, figures, images=images, evidence=evidence)  # doctest: +SKIP
"""

from .html import render_html
from .markdown import render_markdown
from .plots import (deferral_png, fidelity_vs_complexity_png, per_class_fidelity_png,
                    reliability_png, thumbnail_png)

__all__ = ["render_markdown", "render_html", "fidelity_vs_complexity_png", "per_class_fidelity_png",
           "deferral_png", "reliability_png", "thumbnail_png"]
