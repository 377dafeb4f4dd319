"""Turns study results into scaling curves, fits, tables and figures (filled by the analysis issue)."""
