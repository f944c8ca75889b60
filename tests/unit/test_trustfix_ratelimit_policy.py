"""The per-method rate limit policy: a method's limits are the operator's, else its built-in ones,
else the general ones, per client IP and per caller separately; the operator's come as JSON from
the environment, naming only methods the service serves."""

from __future__ import annotations

import pytest

from server.app import create_app
from server.settings import RateLimit, Settings
from server.xrpc.ratelimits import check_methods, longest_window_seconds, method_limits

NS = "tickets.atmosphere."


def test_trustfix_a_method_without_limits_of_its_own_has_the_general_ones() -> None:
    settings = Settings(rate_limit_per_ip=50, rate_limit_per_caller=7, rate_limit_window_seconds=20)
    limits = method_limits(settings, NS + "createTicketHold")
    assert (limits.per_ip, limits.per_caller) == (
        RateLimit(calls=50, window_seconds=20),
        RateLimit(calls=7, window_seconds=20),
    )


def test_trustfix_built_in_limits() -> None:
    settings = Settings()
    general = RateLimit(
        calls=settings.rate_limit_per_caller, window_seconds=settings.rate_limit_window_seconds
    )
    public = method_limits(settings, NS + "listPublicConfig")
    assert (public.per_ip, public.per_caller) == (RateLimit(calls=30, window_seconds=60), general)
    for nsid in (NS + "searchTickets", NS + "checkInSearchedTicket"):
        assert method_limits(settings, nsid).per_caller == RateLimit(calls=30, window_seconds=300)


def test_trustfix_the_operators_limits_come_first_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TICKETS_RATE_LIMIT_METHODS",
        '{"tickets.atmosphere.listPublicConfig": {"per_caller": {"calls": 9, "window_seconds": 900}},'
        ' "tickets.atmosphere.createTicketHold": {"per_caller": {"calls": 500, "window_seconds": 10}}}',
    )
    settings = Settings()
    public = method_limits(settings, NS + "listPublicConfig")
    assert public.per_ip == RateLimit(calls=30, window_seconds=60)  # still the built-in one
    assert public.per_caller == RateLimit(calls=9, window_seconds=900)
    assert method_limits(settings, NS + "createTicketHold").per_caller.calls == 500
    assert longest_window_seconds(settings) == 900  # the sweeper keeps counts that long


def test_trustfix_limits_for_a_method_not_served_stop_the_start(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TICKETS_RATE_LIMIT_METHODS", '{"tickets.atmosphere.serchTickets": {}}')
    settings = Settings()
    with pytest.raises(ValueError, match="serchTickets"):
        check_methods(settings, [NS + "searchTickets"])
    with pytest.raises(ValueError, match="TICKETS_RATE_LIMIT_METHODS"):
        create_app(settings)


def test_trustfix_a_limit_is_whole_and_positive(monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ('{"x": {"per_ip": {"calls": 0, "window_seconds": 60}}}', '{"x": {"per_ip": {"calls": 5}}}',
                '{"x": {"per_address": {"calls": 5, "window_seconds": 60}}}'):  # fmt: skip
        monkeypatch.setenv("TICKETS_RATE_LIMIT_METHODS", bad)
        with pytest.raises(ValueError, match="rate_limit_methods"):
            Settings()
