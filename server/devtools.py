"""Playing a calling app: service-auth JWTs with any claim or header chosen by the caller.

For the tests, the demo (``tickets demo``, ``tickets call``) and the benchmarks only: nothing on the
serving path imports this module (an import contract in ``pyproject.toml`` keeps it so). The service's
own signing is :mod:`server.auth.signing`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from server.auth.signing import SigningKey, jwt_header, service_claims, sign_jws


def mint_service_jwt(
    key: SigningKey,
    *,
    iss: str,
    aud: str,
    lxm: str | None,
    exp_in: int = 60,
    iat: int | None = None,
    jti: str | None = None,
    extra_header: Mapping[str, Any] | None = None,
    extra_claims: Mapping[str, Any] | None = None,
    now: float | None = None,
) -> str:
    """An atproto service-auth JWT, as a calling app would send it.

    ``exp`` is ``now + exp_in``; ``iat`` defaults to now and ``jti`` to a random value; ``lxm=None``
    leaves the claim out. ``extra_header`` and ``extra_claims`` are merged last and win.
    """
    claims = service_claims(
        iss=iss, aud=aud, lxm=lxm or "", lifetime_s=exp_in, now_s=time.time() if now is None else now
    )
    if iat is not None:
        claims["iat"] = iat
    if jti is not None:
        claims["jti"] = jti
    if lxm is None:
        del claims["lxm"]
    claims.update(extra_claims or {})
    return sign_jws(key, {**jwt_header(key), **(extra_header or {})}, claims)
