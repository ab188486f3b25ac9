"""Who may call the HTTP APIs: OAuth2 bearer tokens (JWT, RFC 9068), verified with PyJWT against
the issuer's public keys, carrying the scopes of golive_contracts.scopes.

A route states the scope it needs, `caller: Annotated[Caller, require(Scope.READ_ORDERS)]`; the
OpenAPI document shows the scheme and each operation's scope. No token, or one that is expired,
forged, for another audience or from another issuer: 401. A good token without the scope: 403.
Both with the RFC 6750 `WWW-Authenticate` header. `/healthz` and `/readyz` take no token.

The keys come from the identity provider's JWKS URL (`AUTH_JWKS_URL`, fetched and cached), or
from a JWKS file (`AUTH_JWKS_FILE`): `make run` writes one and signs local tokens with its
private half (golive_platform.tokens, `golive token`). A service with neither refuses to start.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, cast

import jwt
from fastapi import Depends, FastAPI, HTTPException, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer, SecurityScopes
from golive_contracts.scopes import DESCRIPTIONS, Scope, parse

from golive_eventing.exits import ConfigError
from golive_eventing.settings import AuthSettings

REALM = "golive"
REQUIRED_CLAIMS = ("exp", "iss", "aud", "sub")
# Tokens verified lately, and for how long one is taken without checking it again: a rotated-
# out key's tokens stop working within this time, an expired token at once.
CACHE_SIZE = 4096
KEYS_RETRY_AFTER_S = "5"
CACHE_S = 60.0

log = logging.getLogger(__name__)


class AuthConfigError(ConfigError):
    """No way to verify tokens was configured, or the keys cannot be read."""


@dataclass(frozen=True)
class Caller:
    """Who called, as the verified token says."""

    subject: str
    scopes: frozenset[str]
    token_id: str | None = None

    def may(self, scope: Scope) -> bool:
        return scope.value in self.scopes


class InvalidTokenError(Exception):
    """The token cannot be trusted: its message says why (sent back to the caller)."""


class KeysUnavailableError(Exception):
    """The identity provider's keys could not be fetched: not the caller's fault (503)."""


class _KeyFile:
    """A JWKS file, read again when a token names a key it does not hold (a rotation)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp = -1
        self._keys: dict[str, jwt.PyJWK] = {}
        self._load()

    def _load(self) -> None:
        try:
            stamp = self.path.stat().st_mtime_ns
            if stamp == self._stamp:
                return
            found = jwt.PyJWKSet.from_json(self.path.read_text())
        except (OSError, ValueError, jwt.PyJWTError) as exc:
            raise AuthConfigError(f"cannot read the token keys in {self.path}: {exc}") from exc
        self._keys = {k.key_id: k for k in found.keys if k.key_id}
        self._stamp = stamp

    def key(self, kid: str) -> jwt.PyJWK:
        """The key `kid`. The file is read again for a key it did not hold; a file that cannot
        be read then (mid-rewrite, or gone) is the keys being unavailable, not the caller's
        fault nor a crash: 503, and the keys read before stay."""
        if kid not in self._keys:
            with self._lock:
                try:
                    self._load()
                except AuthConfigError as exc:
                    log.warning("%s", exc)  # where, for the operator; not in the answer
                    raise KeysUnavailableError("the token keys cannot be read now") from None
        try:
            return self._keys[kid]
        except KeyError:
            raise InvalidTokenError(f"signed with an unknown key ({kid})") from None


class Verifier:
    """Checks a bearer token and says who called (a Caller), or why not (InvalidTokenError)."""

    def __init__(self, settings: AuthSettings, clock: Callable[[], float] = time.time) -> None:
        self.settings = settings
        self.clock = clock
        self._file: _KeyFile | None = None
        self._seen: dict[str, tuple[Caller, float]] = {}  # token -> (caller, good until)
        self._client: jwt.PyJWKClient | None = None
        if settings.auth_jwks_url:
            self._client = jwt.PyJWKClient(settings.auth_jwks_url, lifespan=300, timeout=5)
        elif settings.auth_jwks_file:
            self._file = _KeyFile(settings.auth_jwks_file)
        else:
            raise AuthConfigError(
                "no keys to verify API tokens with: set AUTH_JWKS_URL to your identity "
                "provider's JWKS, or AUTH_JWKS_FILE to a JWKS file (make run writes one; "
                "see docs/security.md)"
            )

    @property
    def fetches(self) -> bool:
        """Whether verifying may fetch keys over the network (then it runs off the event loop)."""
        return self._client is not None

    def verify(self, token: str) -> Caller:
        """The caller of a good token; a token seen lately is not checked again (a client
        sends the same token until it expires), for at most CACHE_S and never past its exp."""
        now = self.clock()
        hit = self._seen.get(token)
        if hit is not None and now < hit[1]:
            return hit[0]
        caller, exp = self.check(token)
        if len(self._seen) >= CACHE_SIZE:
            self._seen.pop(next(iter(self._seen)), None)
        self._seen[token] = (caller, min(exp, now + CACHE_S))
        return caller

    def check(self, token: str) -> tuple[Caller, float]:
        """Verify `token` (signature, claims), seen before or not; the caller and its exp."""
        s = self.settings
        try:
            key = self._key(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(s.auth_algorithms),
                audience=s.auth_audience,
                issuer=s.auth_issuer,
                leeway=s.auth_leeway_s,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.PyJWKClientConnectionError as exc:
            raise KeysUnavailableError(f"the token keys could not be fetched: {exc}") from None
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise InvalidTokenError(f"the token is not valid here: {exc}") from None
        return Caller(str(claims["sub"]), _scopes(claims), claims.get("jti")), float(claims["exp"])

    def _key(self, token: str) -> jwt.PyJWK:
        if self._client is not None:
            return self._client.get_signing_key_from_jwt(token)
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str):
            raise InvalidTokenError("the token names no key (kid)")
        assert self._file is not None
        return self._file.key(kid)


def _scopes(claims: dict[str, Any]) -> frozenset[str]:
    """`scope` (RFC 9068, space-separated), or `scp` as some providers send it (Okta, Entra ID)."""
    scope, scp = claims.get("scope"), claims.get("scp")
    if isinstance(scope, str):
        return parse(scope)
    if isinstance(scp, str):
        return parse(scp)
    if isinstance(scp, list):
        return frozenset(str(s) for s in scp)
    return frozenset()


# -- FastAPI -------------------------------------------------------------------------------------

bearer = HTTPBearer(
    scheme_name="bearer",
    bearerFormat="JWT",
    auto_error=False,
    description="An OAuth2 access token (JWT). Scopes:\n\n"
    + "\n".join(f"- `{scope}`: {text}" for scope, text in DESCRIPTIONS.items())
    + "\n\nLocally: `uv run golive token SCOPE...` prints one.",
)


# Every route that takes a token may answer these; OpenAPI documents them (schemathesis checks).
RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"description": "No bearer token, or one that is not valid here"},
    403: {"description": "The token lacks the scope the operation needs"},
    503: {"description": "Not available now (the identity provider's keys, the broker): retry"},
}


def use_tokens(app: FastAPI, verifier: Verifier) -> None:
    """Routes of `app` that `require` a scope verify tokens with `verifier`. Make the verifier
    first thing when building a service: a service that cannot verify tokens should say so
    before it connects to anything."""
    app.state.verifier = verifier


def _challenge(error: str | None = None, description: str = "", scope: str = "") -> str:
    parts = [f'realm="{REALM}"']
    if error:
        parts.append(f'error="{error}"')
    if description:
        parts.append(f'error_description="{_quotable(description)}"')
    if scope:
        parts.append(f'scope="{scope}"')
    return "Bearer " + ", ".join(parts)


def _quotable(text: str) -> str:
    return "".join(c for c in text if c.isprintable() and c not in '"\\')


async def _authorized(
    security_scopes: SecurityScopes,
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller:
    if credentials is None:
        raise HTTPException(
            status_code=401,
            detail="a bearer token is required (Authorization: Bearer <token>)",
            headers={"WWW-Authenticate": _challenge()},
        )
    verifier = cast(Verifier, request.app.state.verifier)
    try:
        if verifier.fetches:
            caller = await run_in_threadpool(verifier.verify, credentials.credentials)
        else:
            caller = verifier.verify(credentials.credentials)
    except InvalidTokenError as exc:
        raise HTTPException(
            status_code=401,
            detail=str(exc),
            headers={"WWW-Authenticate": _challenge("invalid_token", str(exc))},
        ) from None
    except KeysUnavailableError as exc:
        raise HTTPException(
            status_code=503, detail=str(exc), headers={"Retry-After": KEYS_RETRY_AFTER_S}
        ) from None
    missing = [s for s in security_scopes.scopes if s not in caller.scopes]
    if missing:
        needed = " ".join(security_scopes.scopes)
        raise HTTPException(
            status_code=403,
            detail=f"the token lacks the scope {' '.join(missing)}",
            headers={"WWW-Authenticate": _challenge("insufficient_scope", scope=needed)},
        )
    return caller


def require(*scopes: Scope) -> Any:
    """A dependency that yields the verified Caller, holding every one of `scopes`."""
    return Security(_authorized, scopes=[s.value for s in scopes])
