"""REST route handlers: parse, build a command, dispatch, map the result."""
