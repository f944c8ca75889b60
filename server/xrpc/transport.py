"""The refusals only the HTTP transport raises, before or around any domain code: an unknown
method, the wrong verb, a body over the limit, a method another service answers, and a process
not ready to serve. They answer like every other error (:mod:`server.xrpc.errors`); the domain
never raises them."""

from __future__ import annotations

from server.errors import ServiceError


class MethodNotImplemented(ServiceError):
    code = "MethodNotImplemented"
    status = 404


class MethodNotAllowed(ServiceError):
    code = "InvalidRequest"
    status = 405


class PayloadTooLarge(ServiceError):
    code = "PayloadTooLarge"
    status = 413


class PaymentMethodAtBroker(ServiceError):
    """A real payment broker is configured: the payment-side methods are the broker's to answer."""

    code = "PaymentMethodAtBroker"
    status = 421


class NotReady(ServiceError):
    """Readiness (``/readyz``): the database does not answer, or its schema is not at the head
    migration."""

    code = "NotReady"
    status = 503
