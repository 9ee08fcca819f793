"""One error model: every refusal a client can meet has one code, and each code one status."""

from __future__ import annotations

import importlib
import pkgutil

import ktrdr.domain
from ktrdr.api.problems import _HTTP_CODES, ERRORS, INTERNAL_ERROR, status_and_code
from ktrdr.domain import DomainError


def _every_domain_error() -> set[type[DomainError]]:
    for module in pkgutil.walk_packages(ktrdr.domain.__path__, "ktrdr.domain."):
        importlib.import_module(module.name)
    found: set[type[DomainError]] = set()
    todo = [DomainError]
    while todo:
        for sub in todo.pop().__subclasses__():
            found.add(sub)
            todo.append(sub)
    return found


def test_every_domain_error_is_mapped_to_its_own_code() -> None:
    # Given every error class the domain can raise
    errors = _every_domain_error()
    assert len(errors) >= 16
    for error in errors:
        # When the API looks up its status and code
        status, code = status_and_code(error.__new__(error))
        # Then it is a mapped 4xx/5xx under the class's own code, never the fallback
        assert (status, code) != INTERNAL_ERROR, error
        assert code == error.code, error
        assert 400 <= status < 600


def test_every_entry_is_reachable() -> None:
    # An entry is reached only if no other key is the same class; a domain entry only if
    # the domain defines it.
    domain = _every_domain_error()
    for cls in ERRORS:
        assert not issubclass(cls, DomainError) or cls in domain, cls


def test_each_code_has_exactly_one_status() -> None:
    pairs = [*ERRORS.values(), *((s, c) for s, c in _HTTP_CODES.items()), INTERNAL_ERROR]
    pairs.append((503, "DATABASE_UNAVAILABLE"))
    statuses: dict[str, set[int]] = {}
    for status, code in pairs:
        statuses.setdefault(code, set()).add(status)
    assert {code: s for code, s in statuses.items() if len(s) > 1} == {}


def test_an_unmapped_error_is_an_internal_error() -> None:
    assert status_and_code(RuntimeError("boom")) == INTERNAL_ERROR
