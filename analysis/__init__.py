"""Study results into scaling curves, fits with uncertainty, comparisons, figures and a report.

Start with ``analysis.results.load(location)``; ``python -m analysis.report RESULTS --out DIR``
writes everything as Markdown; ``notebooks/scaling_curves.ipynb`` walks through the same calls.
"""
