"""Every error a caller can see has one home: the domain's in ``server/errors.py``, the transport's
own in ``server/xrpc/transport.py``; the two kinds stay apart."""

from __future__ import annotations

import importlib
import pkgutil

import server
from server.errors import DomainError, ServiceError
from server.xrpc import transport

# The validator's refusal stays with the validator (an InvalidRequest naming the bad path).
VALIDATOR = "server.xrpc.lexicon"


def every_server_module() -> None:
    for module in pkgutil.walk_packages(server.__path__, "server."):
        if module.name != "server.__main__":
            importlib.import_module(module.name)


def subclasses(base: type[ServiceError]) -> set[type[ServiceError]]:
    found: set[type[ServiceError]] = set()
    for child in base.__subclasses__():
        found |= {child} | subclasses(child)
    return found


def test_every_error_class_lives_in_the_errors_module_or_the_transport() -> None:
    every_server_module()
    homes = {"server.errors", "server.xrpc.transport"}
    strays = sorted(
        f"{error.__module__}.{error.__qualname__}"
        for error in subclasses(ServiceError)
        if error.__module__ not in homes and not error.__module__.startswith(VALIDATOR)
    )
    assert strays == []


def test_transport_errors_are_not_domain_errors_and_answer_as_before() -> None:
    answers = {
        error.__name__: (error.code, error.status)
        for error in subclasses(ServiceError)
        if error.__module__ == transport.__name__
    }
    assert answers == {
        "MethodNotImplemented": ("MethodNotImplemented", 404),
        "MethodNotAllowed": ("InvalidRequest", 405),
        "PayloadTooLarge": ("PayloadTooLarge", 413),
        "PaymentMethodAtBroker": ("PaymentMethodAtBroker", 421),
        "NotReady": ("NotReady", 503),
    }
    assert not any(issubclass(getattr(transport, name), DomainError) for name in answers)
