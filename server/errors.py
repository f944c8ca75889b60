"""The one error hierarchy of the service.

Every error a caller can see is a :class:`ServiceError` with a stable ``code`` (the XRPC ``error``
name, fixed by the published contract where it names one) and an HTTP ``status``. The XRPC layer
maps them to ``{"error": code, "message": message}`` in one place (:mod:`server.xrpc.errors`).
The refusals of the service's rules, whoever raises them, are the :class:`DomainError` classes
here; the few that only the HTTP transport raises (an unknown method, the wrong verb, a body too
large...) live with it in :mod:`server.xrpc.transport`. This module imports nothing of the server.
"""

from __future__ import annotations

from typing import ClassVar


class ServiceError(Exception):
    """Base class: a refusal the caller sees as ``{"error": code, "message": message}``."""

    code: ClassVar[str] = "InvalidRequest"
    status: ClassVar[int] = 400

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers or {}


class DomainError(ServiceError):
    """A refusal by the service's rules: the caller can act on it."""


# --- request shape -------------------------------------------------------------------------------


class InvalidRequest(DomainError):
    code = "InvalidRequest"
    status = 400


# --- caller authentication -----------------------------------------------------------------------


class AuthError(DomainError):
    code = "AuthenticationRequired"
    status = 401


class AuthenticationRequired(AuthError):
    code = "AuthenticationRequired"


class BadJwt(AuthError):
    code = "BadJwt"


class BadJwtSignature(AuthError):
    code = "BadJwtSignature"


class BadJwtAudience(AuthError):
    code = "BadJwtAudience"


class BadJwtLexiconMethod(AuthError):
    code = "BadJwtLexiconMethod"


class JwtExpired(AuthError):
    code = "JwtExpired"


class JwtReplayed(AuthError):
    code = "JwtReplayed"


class UserDidMismatch(AuthError):
    code = "UserDidMismatch"


class OrganizerAssertionInvalid(AuthError):
    code = "OrganizerAssertionInvalid"


class AppNotRegistered(DomainError):
    code = "AppNotRegistered"
    status = 403


class TicketsModuleDisabled(DomainError):
    code = "TicketsModuleDisabled"
    status = 403


class RateLimitExceeded(DomainError):
    code = "RateLimitExceeded"
    status = 429


# --- catalog -------------------------------------------------------------------------------------


class NotFound(DomainError):
    status = 404


class EventNotFound(NotFound):
    code = "EventNotFound"


class TierNotFound(NotFound):
    code = "TierNotFound"


class CapacityGroupNotFound(NotFound):
    code = "CapacityGroupNotFound"


class TicketHoldNotFound(NotFound):
    code = "TicketHoldNotFound"


class OrganizerReassignmentNotAllowed(DomainError):
    code = "OrganizerReassignmentNotAllowed"
    status = 409


class OrganizerConsentRequired(DomainError):
    """The calling app has no standing consent of the organizer (never granted, or revoked)."""

    code = "OrganizerConsentRequired"
    status = 403


class OrganizerConsentNotFound(NotFound):
    code = "OrganizerConsentNotFound"


class OrganizerNotEventAuthority(DomainError):
    """``organizerDid`` is not the repository (authority) of the event's AT-URI."""

    code = "OrganizerNotEventAuthority"
    status = 400


class NotOwner(DomainError):
    """The calling app may not read or change what another app ticketed or sold."""

    code = "Forbidden"
    status = 403


class CapacityBelowCommitted(DomainError):
    code = "CapacityBelowCommitted"
    status = 409


class CapacityGroupMismatch(DomainError):
    code = "CapacityGroupMismatch"
    status = 400


# --- holds ---------------------------------------------------------------------------------------


class TicketHoldUnavailable(DomainError):
    """The tier or event cannot be held now (paused, archived, outside its sale window...)."""

    code = "TicketHoldUnavailable"
    status = 409


class OrderLimitExceeded(DomainError):
    code = "OrderLimitExceeded"
    status = 400


class InsufficientAvailability(DomainError):
    """Some items are short; ``shortages`` names every one of them."""

    code = "InsufficientAvailability"
    status = 409

    def __init__(self, message: str, shortages: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.shortages = shortages


class SoldOut(InsufficientAvailability):
    code = "SoldOut"


class TierSoldOut(InsufficientAvailability):
    code = "TierSoldOut"


class PaymentSetupIncomplete(DomainError):
    """The environment cannot take payments: a ``live`` hold needs a payment broker configured."""

    code = "PaymentSetupIncomplete"
    status = 409


class TierNotFree(DomainError):
    code = "TierNotFree"
    status = 400


# --- offers --------------------------------------------------------------------------------------


class OfferNotFound(NotFound):
    code = "OfferNotFound"


class InvalidOfferCode(DomainError):
    """The code cannot be used for this order. One answer for an unknown code, a code of another
    event or tier, an archived one and one outside its window, so guessing learns nothing more."""

    code = "InvalidOfferCode"
    status = 400


class OfferCodeExhausted(DomainError):
    """The code is real but has no redemptions left (in total, or for this buyer)."""

    code = "OfferCodeExhausted"
    status = 409


# --- desks ---------------------------------------------------------------------------------------


class RecordDeviceMismatch(DomainError):
    """An upload carrying a check-in record under another device's id (or the server's own
    ``online``): a desk uploads only the records it wrote itself."""

    code = "RecordDeviceMismatch"
    status = 403


class EnrollmentCodeInvalid(AuthError):
    code = "EnrollmentCodeInvalid"


class DeviceAuthRequired(AuthError):
    code = "DeviceAuthenticationRequired"


class DeviceRevoked(DomainError):
    code = "DeviceRevoked"
    status = 403


class DeviceNotFound(NotFound):
    code = "DeviceNotFound"


# --- tickets and check-in lists ------------------------------------------------------------------


class TicketNotFound(NotFound):
    code = "TicketNotFound"


class TicketNotActive(DomainError):
    code = "TicketNotActive"
    status = 409


class CheckInListNotFound(NotFound):
    code = "CheckInListNotFound"


# --- idempotency ---------------------------------------------------------------------------------


class IdempotencyKeyReused(DomainError):
    """The same idempotency key was sent with a different input."""

    code = "IdempotencyKeyReused"
    status = 422


class IdempotencyKeyInFlight(DomainError):
    code = "IdempotencyKeyInFlight"
    status = 409

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"Retry-After": "1"})


class CustomerEmailMissing(DomainError):
    """A ticket's pass cannot be e-mailed: neither its order nor its holder gave an address."""

    code = "CustomerEmailMissing"
    status = 409


class Conflict(DomainError):
    """A concurrent change won; retrying the call is safe."""

    code = "Conflict"
    status = 409


# --- the event graph: calendar event records read from their PDS ---------------------------------


class EventRecordNotFound(NotFound):
    """The event's PDS answers that the calendar event record does not exist."""

    code = "EventRecordNotFound"


class InvalidEventRecord(DomainError):
    """The calendar event record was read but is not a usable ``community.lexicon.calendar.event``."""

    code = "InvalidEventRecord"
    status = 400


class EventRecordUnavailable(DomainError):
    """The calendar event record could not be read now (DID or PDS unreachable) and the call gave
    no details to ticket the event with; retrying later may work."""

    code = "EventRecordUnavailable"
    status = 502


# --- public records in organizers' repositories -------------------------------------------------


class OrganizerLoginMissing(DomainError):
    code = "OrganizerLoginMissing"
    status = 409


class PublishFailed(DomainError):
    """The records could not be brought up to date; ``message`` says why."""

    code = "PublishFailed"
    status = 502


# --- payment-side methods ------------------------------------------------------------------------


class PaymentNotFound(NotFound):
    """No checkout of the calling app has this token (``network.attested.payment.status``)."""

    code = "PaymentNotFound"


class WebhookSignatureInvalid(DomainError):
    code = "InvalidSignature"
    status = 401


# --- the organizer's view ------------------------------------------------------------------------


class ConflictNotFound(NotFound):
    """No check-in conflict with this id belongs to the event the caller manages."""

    code = "ConflictNotFound"


class WebhookDeliveryNotFound(NotFound):
    """No lifecycle event delivery with this id concerns an event the caller manages."""

    code = "WebhookDeliveryNotFound"
