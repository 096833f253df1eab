"""Plotting helpers, one module per chapter."""
