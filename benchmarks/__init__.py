"""Standalone benchmark scripts (``make bench``); each prints its figures and ratios."""
