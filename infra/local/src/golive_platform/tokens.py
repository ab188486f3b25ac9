"""The local platform's token issuer: what an identity provider is in production.

One ES256 signing key per install, made on first use: its private half in
`<credentials dir>/token-signing.pem` (mode 0600), its public half in `token-keys.json`, the
JWKS file the services verify with (AUTH_JWKS_FILE, golive_eventing.auth). `golive token`
mints a token for the scopes asked for. Rotating makes a new key and keeps the previous public
key in the JWKS, so tokens already handed out stay good until they expire. Never in git (var/).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from golive_contracts.scopes import Scope
from golive_eventing.settings import AUDIENCE, LOCAL_ISSUER

from golive_platform.credentials import locked, write_secret

ALGORITHM = "ES256"
SIGNING_KEY = "token-signing.pem"
PUBLIC_KEYS = "token-keys.json"
LOCAL_SUBJECT = "local-developer"
DEFAULT_TTL_S = 3600
KEPT_PUBLIC_KEYS = 2  # the current key and the one before it


class TokenError(ValueError):
    """A scope that does not exist, or a key file that cannot be read."""


def thumbprint(public_jwk: dict[str, Any]) -> str:
    """The key's id: its RFC 7638 thumbprint (SHA-256 of the required members, base64url)."""
    members = {k: public_jwk[k] for k in ("crv", "kty", "x", "y")}
    digest = hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode())
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def _public_jwk(key: ec.EllipticCurvePrivateKey) -> dict[str, Any]:
    found: dict[str, Any] = jwt.algorithms.ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    found |= {"kid": thumbprint(found), "alg": ALGORITHM, "use": "sig"}
    return found


def bearer(token: str) -> dict[str, str]:
    """The Authorization header that presents `token`."""
    return {"Authorization": f"Bearer {token}"}


def scopes_named(names: Iterable[str]) -> list[Scope]:
    """The scopes these names stand for; an unknown name is an error naming the known ones."""
    known = {s.value: s for s in Scope}
    chosen = list(names)
    unknown = [n for n in chosen if n not in known]
    if unknown or not chosen:
        what = f"no such scope: {', '.join(unknown)}" if unknown else "name at least one scope"
        raise TokenError(f"{what}; the scopes are {', '.join(known)}")
    return [known[n] for n in chosen]


@dataclass(frozen=True)
class Issuer:
    """The local issuer of one platform instance, its keys under `home`."""

    home: Path

    @property
    def jwks_path(self) -> Path:
        return self.home / PUBLIC_KEYS

    @property
    def key_path(self) -> Path:
        return self.home / SIGNING_KEY

    @classmethod
    def ensure(cls, home: Path) -> Issuer:
        """This instance's issuer; its key made if there is none yet."""
        issuer = cls(home)
        if not (issuer.key_path.exists() and issuer.jwks_path.exists()):
            with locked(issuer.key_path):
                if not (issuer.key_path.exists() and issuer.jwks_path.exists()):
                    issuer._new_key()
        return issuer

    def rotate(self) -> str:
        """A new signing key; the previous public key stays in the JWKS. The new key's id."""
        with locked(self.key_path):
            return self._new_key()

    def _new_key(self) -> str:
        key = ec.generate_private_key(ec.SECP256R1())
        public = _public_jwk(key)
        kept = [k for k in self._public_keys() if k.get("kid") != public["kid"]]
        jwks = {"keys": [public, *kept][:KEPT_PUBLIC_KEYS]}
        # The public half first: a token signed with the new key is never unverifiable.
        self.jwks_path.write_text(json.dumps(jwks, indent=2) + "\n")
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        write_secret(self.key_path, pem.decode())
        return str(public["kid"])

    def _public_keys(self) -> list[dict[str, Any]]:
        try:
            keys = json.loads(self.jwks_path.read_text())["keys"]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise TokenError(f"cannot read {self.jwks_path}: {exc}") from exc
        return [k for k in keys if isinstance(k, dict)]

    def _signing_key(self) -> tuple[ec.EllipticCurvePrivateKey, str]:
        try:
            key = serialization.load_pem_private_key(self.key_path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise TokenError(f"cannot read the signing key {self.key_path}: {exc}") from exc
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise TokenError(f"{self.key_path} is not an EC private key")
        return key, str(_public_jwk(key)["kid"])

    def token(
        self,
        *scopes: Scope,
        subject: str = LOCAL_SUBJECT,
        ttl_s: int = DEFAULT_TTL_S,
        issuer: str = LOCAL_ISSUER,
        audience: str = AUDIENCE,
    ) -> str:
        """A signed access token (RFC 9068 claims) for `scopes`, good for `ttl_s` seconds."""
        key, kid = self._signing_key()
        now = int(time.time())
        claims = {
            "iss": issuer,
            "aud": audience,
            "sub": subject,
            "iat": now,
            "exp": now + ttl_s,
            "jti": str(uuid.uuid4()),
            "client_id": "golive-local",
            "scope": " ".join(s.value for s in scopes),
        }
        return jwt.encode(claims, key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "at+jwt"})

    def headers(self, *scopes: Scope, subject: str = LOCAL_SUBJECT) -> dict[str, str]:
        """The Authorization header of a request holding `scopes`."""
        return bearer(self.token(*scopes, subject=subject))

    def env(self) -> dict[str, str]:
        """How a service process verifies this issuer's tokens (golive_eventing.auth)."""
        return {"AUTH_JWKS_FILE": str(self.jwks_path)}
