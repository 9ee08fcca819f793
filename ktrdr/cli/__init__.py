"""The `ktrdr` command line: REST client, database tools, the worker and the demo."""
