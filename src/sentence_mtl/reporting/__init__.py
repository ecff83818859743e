"""Reporting over result records: the README's generated blocks (``readme``), the report's data
and PDF (``report``, ``report_sections``) and the figures (``plots``). Imports no torch; the
library never imports this package.
"""
