"""One HTTP transport for every client of the REST API: the worker's, the CLI's, the demo's.

It sends a request to ``base_url`` + /api/v1, turns what comes back into a contract
model, and every way it can go wrong into one of three exceptions::

    TransportError
    ├── NoAnswer          nothing answered: connection refused, a timeout, a bad URL
    ├── ProblemAnswer     an error status; ``code`` and ``detail`` from its problem+json
    └── UnreadableAnswer  a success whose body is not the JSON its contract names

Each client maps these onto its own vocabulary (a worker retries a 5xx, the CLI prints
one line); none of them retries here.
"""

from ktrdr.transport.http import (
    API_PREFIX,
    NoAnswer,
    ProblemAnswer,
    Transport,
    TransportError,
    UnreadableAnswer,
)

__all__ = [
    "API_PREFIX",
    "NoAnswer",
    "ProblemAnswer",
    "Transport",
    "TransportError",
    "UnreadableAnswer",
]
