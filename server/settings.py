"""Server settings, read from ``TICKETS_*`` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from server.db.urls import async_url

# Database connections a process keeps open (PostgreSQL; SQLite's readers): TICKETS_DB_POOL_SIZE.
POOL_SIZE = 20


def default_data_dir() -> Path:
    """``$XDG_DATA_HOME/atmosphere-tickets`` (or ``~/.local/share/atmosphere-tickets``)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "atmosphere-tickets"


class RateLimit(BaseModel):
    """At most ``calls`` calls in any ``window_seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    calls: int = Field(ge=1)
    window_seconds: int = Field(ge=1)


class MethodRateLimits(BaseModel):
    """One method's own limits, per client IP and per caller; a limit left out is the method's
    built-in one (or the general one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    per_ip: RateLimit | None = None
    per_caller: RateLimit | None = None


class Settings(BaseSettings):
    """Everything the server needs to know about its deployment."""

    model_config = SettingsConfigDict(env_prefix="TICKETS_", extra="ignore")

    data_dir: Path = Field(default_factory=default_data_dir)
    database_url: str = ""
    service_did: str = "did:web:localhost"
    # Comma-separated accepted ``aud`` values; empty means ``<service_did>#AttestedNetwork``.
    service_audience: str = ""
    did_docs: Path | None = None
    plc_url: str = "https://plc.directory"
    did_web_scheme: str = "https"
    public_url: str = "http://127.0.0.1:8080"

    hold_ttl_seconds: int = Field(default=15 * 60, ge=1, le=24 * 3600)
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    max_body_bytes: int = 1024 * 1024
    # How deep arrays and objects may nest in a JSON body (400 beyond, checked before parsing).
    max_json_depth: int = Field(default=32, ge=1)
    max_metadata_bytes: int = 8 * 1024
    jwt_max_lifetime_seconds: int = 300
    idempotency_lease_seconds: int = 30
    db_pool_size: int = Field(default=POOL_SIZE, ge=1)  # kept open per process (server.db.engine)

    # Offer-code guessing: wrong codes allowed per window, per app and per buyer (429 beyond).
    offer_code_window_seconds: int = Field(default=600, ge=1)
    offer_code_failures_per_app: int = Field(default=300, ge=1)
    offer_code_failures_per_buyer: int = Field(default=10, ge=1)

    # Rate limits on every XRPC call (429 RateLimitExceeded with Retry-After), counted in the
    # database so that every server process shares them, in sliding windows. Off: none but the
    # offer-code limits (test harnesses and benchmarks lift them this way).
    rate_limits_enabled: bool = True
    rate_limit_window_seconds: int = Field(default=10, ge=1)
    # Calls of one method by one app (or one desk) per window.
    rate_limit_per_caller: int = Field(default=100, ge=1)
    # Calls of one method from one client IP per window, authenticated or not (desks at a venue
    # often share one address).
    rate_limit_per_ip: int = Field(default=1200, ge=1)
    # Methods with limits of their own, over their built-in ones (``server.xrpc.ratelimits``), as
    # JSON: ``{"<nsid>": {"per_ip": {"calls": 30, "window_seconds": 60}, "per_caller": {…}}}``.
    rate_limit_methods: dict[str, MethodRateLimits] = Field(default_factory=dict)
    # Wrong enrollment codes per window, from one client IP and from everyone together; while a
    # limit is reached every enrollment is refused, right code or wrong.
    enroll_window_seconds: int = Field(default=600, ge=1)
    enroll_failures_per_ip: int = Field(default=10, ge=1)
    enroll_failures_total: int = Field(default=200, ge=1)
    # The client IP: the socket peer, or behind N trusted reverse proxies the address the outermost
    # of them saw (the N-th entry from the right of ``client_ip_header``, e.g. X-Forwarded-For).
    trusted_proxy_count: int = Field(default=0, ge=0, le=10)
    client_ip_header: str = "x-forwarded-for"

    # Outbound lifecycle webhooks.
    webhook_poll_interval_seconds: float = Field(default=1.0, gt=0)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = Field(default=12, ge=1)
    webhook_backoff_base_seconds: float = Field(default=5.0, gt=0)
    webhook_backoff_cap_seconds: float = Field(default=6 * 3600.0, gt=0)
    webhook_batch_size: int = Field(default=20, ge=1)

    # Inbound payment broker webhooks (``atm-signature`` secrets). Unset: the built-in dev payments
    # sign with a secret generated in the data folder.
    broker_url: str = ""
    broker_webhook_secret: str = ""
    broker_webhook_previous_secret: str = ""

    # The AT Protocol side: reading calendar event records from their PDS, and writing the public
    # records into organizers' repositories. ``pds_allow_http`` admits http:// PDS endpoints
    # (development and tests); otherwise only https:// ones are called.
    pds_timeout_seconds: float = Field(default=5.0, gt=0)
    pds_max_response_bytes: int = Field(default=1024 * 1024, ge=1024)
    pds_allow_http: bool = False
    publish_poll_interval_seconds: float = Field(default=2.0, gt=0)
    publish_retry_base_seconds: float = Field(default=10.0, gt=0)
    publish_retry_cap_seconds: float = Field(default=3600.0, gt=0)

    # Hex of a 32-byte secp256k1 private key: this service's own signing key, for the service-auth
    # JWTs of XRPC receiver delivery, published in its DID document. Unset: a key file in the data
    # folder (every server process must then share that folder).
    service_signing_key: str = ""

    # Outbound requests to hosts a caller can name (DID documents, PDS calls, webhooks): only public
    # addresses unless ``outbound_allow_private`` (development and tests, whose stand-ins listen on
    # loopback); connecting, the whole exchange and the answer's size are bounded.
    outbound_allow_private: bool = False
    outbound_connect_timeout_seconds: float = Field(default=3.0, gt=0)
    outbound_total_timeout_seconds: float = Field(default=30.0, gt=0)
    outbound_max_response_bytes: int = Field(default=4 * 1024 * 1024, ge=1024)

    # Inbound HTTP (``tickets serve``): a client has ``http_header_timeout_seconds`` from connecting
    # (or from the first byte of its next request) to finish its request headers and
    # ``http_body_timeout_seconds`` from then to finish its body, an idle keep-alive
    # connection is closed after ``http_keep_alive_seconds``, and connections beyond
    # ``http_max_connections`` per process are closed as they arrive.
    http_header_timeout_seconds: float = Field(default=10.0, gt=0)
    http_body_timeout_seconds: float = Field(default=60.0, gt=0)
    http_keep_alive_seconds: int = Field(default=5, ge=1)
    http_max_connections: int = Field(default=1000, ge=1)

    # Logs: every line as text or as one JSON object; one access-log line per HTTP request.
    log_format: Literal["text", "json"] = "text"
    access_log: bool = True
    # Prometheus metrics at /metrics: ``loopback`` answers only clients on this machine (behind
    # trusted proxies, the address they forwarded), ``on`` answers everyone, ``off`` serves none.
    # A non-zero ``metrics_port`` moves /metrics off the main port to ``metrics_host:metrics_port``,
    # served by the main process of ``tickets serve`` to anyone who reaches that address.
    metrics: Literal["off", "loopback", "on"] = "loopback"
    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # How often each process samples the outbox backlog and its database pool for the metrics.
    metrics_sample_seconds: float = Field(default=15.0, gt=0)
    # On SIGTERM, requests in flight get this long to finish before their connections are closed.
    shutdown_grace_seconds: float = Field(default=30.0, gt=0)
    # A served worker whose event loop has not run for this long ends, and a new one is started
    # (server.watchdog); 0 turns the watch off.
    worker_stall_seconds: float = Field(default=60.0, ge=0)

    # E-mail to buyers (passes on issuance; voids, refunds and transfers). Unset ``smtp_host``: the
    # messages are written as .eml files to ``<data_dir>/mail`` (the server says so at startup).
    # ``smtp_starttls``: upgrade the connection before logging in (port 587); off for a local relay.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_starttls: bool = True
    smtp_from: str = "tickets@localhost"
    smtp_timeout_seconds: float = Field(default=20.0, gt=0)
    mail_poll_interval_seconds: float = Field(default=2.0, gt=0)
    mail_max_attempts: int = Field(default=10, ge=1)
    mail_backoff_base_seconds: float = Field(default=30.0, gt=0)
    mail_backoff_cap_seconds: float = Field(default=6 * 3600.0, gt=0)

    # 32 bytes, base64: seals the check-in lists' private signing keys at rest. Unset: a key file
    # in the data folder (every server process must then share that folder).
    secret_key: str = ""

    @property
    def resolved_database_url(self) -> str:
        """``database_url`` with its async driver (``postgresql://`` and ``sqlite://`` are accepted
        as written), or the SQLite file in the data folder."""
        if self.database_url:
            return async_url(self.database_url)
        return f"sqlite+aiosqlite:///{self.data_dir / 'tickets.sqlite3'}"

    @property
    def mail_folder(self) -> Path:
        """Where messages go without SMTP settings."""
        return self.data_dir / "mail"

    @property
    def audiences(self) -> frozenset[str]:
        configured = [a.strip() for a in self.service_audience.split(",") if a.strip()]
        return frozenset(configured or [f"{self.service_did}#AttestedNetwork"])


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (tests build their own :class:`Settings` instead)."""
    return Settings()
