"""Evaluation and reports: metrics tables, baselines, plots."""
