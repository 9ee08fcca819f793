"""Edges: the Litestar REST app, the Typer CLI and the composition root."""
