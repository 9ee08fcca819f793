"""The composition root (one bootstrap for app, CLI, workers, tests) and database plumbing."""
