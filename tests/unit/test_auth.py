"""Bearer tokens: what the services accept (golive_eventing.auth) and what the local issuer
mints (golive_platform.tokens). Keys in a temporary directory; no broker."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Annotated, Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi import FastAPI
from fastapi.testclient import TestClient
from golive_contracts.scopes import Scope
from golive_eventing.auth import (
    AuthConfigError,
    Caller,
    InvalidTokenError,
    KeysUnavailableError,
    Verifier,
    require,
    use_tokens,
)
from golive_eventing.exits import EXIT_CONFIG
from golive_eventing.settings import AuthSettings
from golive_platform.process import free_port
from golive_platform.tokens import Issuer, TokenError, scopes_named


@pytest.fixture
def issuer(tmp_path: Path) -> Issuer:
    return Issuer.ensure(tmp_path / "issuer")


def verifier(issuer: Issuer, **overrides: Any) -> Verifier:
    return Verifier(AuthSettings.model_validate({"auth_jwks_file": issuer.jwks_path, **overrides}))


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": "golive-local", "aud": "golive", "sub": "ada", "iat": now, "exp": now + 60}
    return {**base, **overrides}


def signed(issuer: Issuer, body: dict[str, Any], **headers: Any) -> str:
    key, kid = issuer._signing_key()
    return jwt.encode(body, key, algorithm="ES256", headers={"kid": kid, **headers})


def test_the_issuer_mints_tokens_the_services_accept(issuer: Issuer) -> None:
    token = issuer.token(Scope.READ_ORDERS, Scope.READ_AUDIT, subject="ada")
    caller = verifier(issuer).verify(token)
    assert caller.subject == "ada"
    assert caller.scopes == {"orders:read", "audit:read"}
    assert caller.may(Scope.READ_AUDIT)
    assert not caller.may(Scope.READ_PERSONAL_DATA)
    assert caller.token_id


def _without(name: str) -> dict[str, Any]:
    return {k: v for k, v in claims().items() if k != name}


# The claims are made when the test runs, not when it is collected: a suite can take longer
# than a token lives, and a token made at collection would be refused as expired instead.
@pytest.mark.parametrize(
    ("body", "why"),
    [
        (lambda: claims(exp=int(time.time()) - 120), "expired"),
        (lambda: claims(aud="someone-else"), "audience"),
        (lambda: claims(iss="https://evil.example"), "issuer"),
        (lambda: _without("sub"), "sub"),
        (lambda: _without("exp"), "exp"),
    ],
    ids=["expired", "other-audience", "other-issuer", "no-subject", "no-expiry"],
)
def test_a_token_not_meant_for_us_is_refused_saying_why(
    issuer: Issuer, body: Callable[[], dict[str, Any]], why: str
) -> None:
    with pytest.raises(InvalidTokenError, match=f"(?i){why}"):
        verifier(issuer).verify(signed(issuer, body()))


def test_forged_and_downgraded_tokens_are_refused(issuer: Issuer, tmp_path: Path) -> None:
    check = verifier(issuer)
    header, _body, signature = issuer.token(Scope.READ_ORDERS).split(".")
    more = jwt.utils.base64url_encode(json.dumps(claims(scope="audit:pii")).encode()).decode()
    with pytest.raises(InvalidTokenError, match="Signature"):
        check.verify(f"{header}.{more}.{signature}")
    # Signed by another key under our key's id.
    other = ec.generate_private_key(ec.SECP256R1())
    _, kid = issuer._signing_key()
    with pytest.raises(InvalidTokenError, match="Signature"):
        check.verify(jwt.encode(claims(), other, algorithm="ES256", headers={"kid": kid}))
    # alg "none", and HS256 keyed with the public key (algorithm confusion).
    unsigned = jwt.encode(claims(), "", algorithm="none", headers={"kid": kid})
    with pytest.raises(InvalidTokenError):
        check.verify(unsigned)
    head = {"alg": "HS256", "typ": "JWT", "kid": kid}
    signing_input = b".".join(
        jwt.utils.base64url_encode(json.dumps(part).encode()) for part in (head, claims())
    )
    mac = hmac.new(issuer.jwks_path.read_bytes(), signing_input, hashlib.sha256).digest()
    confused = signing_input + b"." + jwt.utils.base64url_encode(mac)
    with pytest.raises(InvalidTokenError, match="alg value is not allowed"):
        check.verify(confused.decode())
    # A key we never published; and no key id at all.
    stranger = Issuer.ensure(tmp_path / "stranger").token(Scope.READ_ORDERS)
    with pytest.raises(InvalidTokenError, match="unknown key"):
        check.verify(stranger)
    with pytest.raises(InvalidTokenError, match="no key"):
        check.verify(jwt.encode(claims(), other, algorithm="ES256"))
    with pytest.raises(InvalidTokenError):
        check.verify("not a token")


def test_rotation_keeps_handed_out_tokens_good_and_running_services_learn_the_new_key(
    issuer: Issuer,
) -> None:
    check = verifier(issuer)  # started before the rotation, like a running service
    before = issuer.token(Scope.READ_ORDERS)
    new_kid = issuer.rotate()
    after = issuer.token(Scope.READ_ORDERS)
    assert (
        jwt.get_unverified_header(after)["kid"]
        == new_kid
        != jwt.get_unverified_header(before)["kid"]
    )
    assert check.verify(before).subject == check.verify(after).subject
    issuer.rotate()  # two rotations on, the first key is gone
    with pytest.raises(InvalidTokenError, match="unknown key"):
        verifier(issuer).verify(before)


def test_a_keys_file_unreadable_after_start_is_the_keys_unavailable(issuer: Issuer) -> None:
    """A running service whose JWKS file is mid-rewrite or gone when a new key shows up:
    503 (retry), not a 500; the keys it read before still verify."""
    check = verifier(issuer)
    before = issuer.token(Scope.READ_ORDERS)
    issuer.rotate()
    after = issuer.token(Scope.READ_ORDERS)
    issuer.jwks_path.write_text('{"keys": [')  # half written
    with pytest.raises(KeysUnavailableError, match="cannot be read now"):
        check.verify(after)
    issuer.jwks_path.unlink()
    with pytest.raises(KeysUnavailableError, match="cannot be read now"):
        check.verify(after)
    assert check.verify(before).subject == "local-developer"


def test_a_token_seen_lately_is_not_checked_again_for_at_most_a_minute(issuer: Issuer) -> None:
    now = [time.time()]
    check = Verifier(
        AuthSettings.model_validate({"auth_jwks_file": issuer.jwks_path}), clock=lambda: now[0]
    )
    seen = issuer.token(Scope.READ_ORDERS)
    assert check.verify(seen).subject == "local-developer"
    issuer.rotate()
    issuer.rotate()  # the key that signed it is gone from the JWKS
    with pytest.raises(InvalidTokenError, match="Signature verification failed"):
        check.verify(issuer.token(Scope.READ_ORDERS)[:-4] + "AAAA")  # unseen: checked
    now[0] += 59
    assert check.verify(seen).subject == "local-developer"  # seen: taken as it was
    now[0] += 2
    with pytest.raises(InvalidTokenError, match="unknown key"):
        check.verify(seen)  # a minute on: checked again


def test_the_private_key_is_readable_by_its_owner_only(issuer: Issuer) -> None:
    assert stat.S_IMODE(issuer.key_path.stat().st_mode) == 0o600
    public = json.loads(issuer.jwks_path.read_text())["keys"]
    assert all("d" not in key for key in public)  # no private member in the JWKS


def test_scopes_of_other_providers_are_read_too(issuer: Issuer) -> None:
    listed = verifier(issuer).verify(signed(issuer, claims(scp=["orders:read", "audit:read"])))
    assert listed.scopes == {"orders:read", "audit:read"}
    assert verifier(issuer).verify(signed(issuer, claims())).scopes == frozenset()


def test_a_service_without_keys_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(AuthConfigError, match="AUTH_JWKS_URL"):
        Verifier(AuthSettings.model_validate({}))
    with pytest.raises(AuthConfigError, match="cannot read"):
        Verifier(AuthSettings.model_validate({"auth_jwks_file": tmp_path / "missing.json"}))
    with pytest.raises(ValueError, match="not both"):
        AuthSettings.model_validate(
            {"auth_jwks_file": tmp_path / "k.json", "auth_jwks_url": "https://idp.example/jwks"}
        )


def test_unknown_scope_names_are_refused_naming_the_known_ones() -> None:
    assert scopes_named(["orders:read"]) == [Scope.READ_ORDERS]
    with pytest.raises(TokenError, match=r"no such scope: orders:nope.*audit:pii"):
        scopes_named(["orders:nope"])
    with pytest.raises(TokenError, match="at least one"):
        scopes_named([])


# -- over HTTP -------------------------------------------------------------------------------


@pytest.fixture
def api(issuer: Issuer) -> TestClient:
    app = FastAPI()
    use_tokens(app, verifier(issuer))

    @app.get("/orders")
    def orders(caller: Annotated[Caller, require(Scope.READ_ORDERS)]) -> dict[str, str]:
        return {"for": caller.subject}

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "alive"}

    return TestClient(app)


def test_http_no_token_401_wrong_scope_403_right_scope_200(api: TestClient, issuer: Issuer) -> None:
    missing = api.get("/orders")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="golive"'
    bad = api.get("/orders", headers={"Authorization": "Bearer nonsense"})
    assert bad.status_code == 401
    assert 'error="invalid_token"' in bad.headers["www-authenticate"]
    basic = api.get("/orders", headers={"Authorization": "Basic Z29saXZlOmdvbGl2ZQ=="})
    assert basic.status_code == 401
    wrong = api.get("/orders", headers=issuer.headers(Scope.READ_AUDIT))
    assert wrong.status_code == 403
    assert wrong.json() == {"detail": "the token lacks the scope orders:read"}
    assert 'error="insufficient_scope", scope="orders:read"' in wrong.headers["www-authenticate"]
    right = api.get("/orders", headers=issuer.headers(Scope.READ_ORDERS, subject="ada"))
    assert (right.status_code, right.json()) == (200, {"for": "ada"})
    assert api.get("/healthz").status_code == 200


def test_openapi_shows_the_bearer_scheme_and_each_operations_scope(api: TestClient) -> None:
    spec = api.get("/openapi.json").json()
    scheme = spec["components"]["securitySchemes"]["bearer"]
    assert (scheme["type"], scheme["scheme"], scheme["bearerFormat"]) == ("http", "bearer", "JWT")
    assert all(s.value in scheme["description"] for s in Scope)
    assert spec["paths"]["/orders"]["get"]["security"] == [{"bearer": ["orders:read"]}]
    assert "security" not in spec["paths"]["/healthz"]["get"]


def test_a_service_process_without_token_keys_says_so_and_exits_78(tmp_path: Path) -> None:
    """Not a traceback, and not a crash a supervisor would restart forever: EX_CONFIG."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AUTH_")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "golive-payment")],
        cwd=tmp_path,  # its default SQLite file lands here
        env={**env, "PAYMENT_PORT": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == EXIT_CONFIG, done.stderr
    assert done.stderr.startswith("golive-payment: cannot start as configured: no keys to verify")
    assert "Traceback" not in done.stderr


@pytest.fixture
def jwks_server(issuer: Issuer) -> Iterator[str]:
    """The issuer's JWKS over HTTP on 127.0.0.1, as an identity provider publishes it."""
    body = issuer.jwks_path.read_bytes()

    class Keys(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Keys)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    server.shutdown()


def test_keys_from_an_identity_provider_s_jwks_url(issuer: Issuer, jwks_server: str) -> None:
    check = Verifier(AuthSettings.model_validate({"auth_jwks_url": jwks_server}))
    assert check.fetches
    assert check.verify(issuer.token(Scope.READ_AUDIT, subject="ada")).subject == "ada"
    with pytest.raises(InvalidTokenError):
        check.verify(Issuer.ensure(issuer.home.parent / "other").token(Scope.READ_AUDIT))


def test_an_identity_provider_that_does_not_answer_is_503_not_401(issuer: Issuer) -> None:
    app = FastAPI()
    nobody = f"http://127.0.0.1:{free_port()}/jwks"
    use_tokens(app, Verifier(AuthSettings.model_validate({"auth_jwks_url": nobody})))

    @app.get("/orders", dependencies=[require(Scope.READ_ORDERS)])
    def orders() -> dict[str, str]:
        return {}

    answer = TestClient(app).get("/orders", headers=issuer.headers(Scope.READ_ORDERS))
    assert answer.status_code == 503, answer.text
    assert "could not be fetched" in answer.json()["detail"]
    assert answer.headers["retry-after"] == "5"
