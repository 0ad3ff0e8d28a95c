"""DPoP (RFC 9449) as requests-oauth2client runs it against rotor with
dpop.require_nonce on.

With a DPoPKey, the password grant must answer a DPoP-bound token after the
client learned the nonce (requests-oauth2client retries on use_dpop_nonce by
itself); the access token names the key's thumbprint in cnf.jkt; the public
client's refresh works with the key and is invalid_grant with another one;
/api/v1/me takes the token with a proof (the library learns the resource's
nonce the same way). Proofs the library would never make are built with
PyJWT, and must be refused with invalid_dpop_proof: a wrong htu, alg none, a
private key in the header, an old iat, and a replay.

Reads ROTOR_ISSUER, ROTOR_USERNAME, ROTOR_PASSWORD and ROTOR_CLIENT_DPOP (a
public client with the password and refresh_token grants); run.sh sets them.
Exits non-zero when a check fails.
"""

import base64
import json
import os
import sys
import time
import traceback
import uuid

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from requests_oauth2client import DPoPKey, DPoPToken, InvalidGrant, OAuth2Client

ISSUER = os.environ.get("ROTOR_ISSUER", "").rstrip("/")
USERNAME = os.environ.get("ROTOR_USERNAME", "alice")
PASSWORD = os.environ.get("ROTOR_PASSWORD", "")
CLIENT_ID = os.environ.get("ROTOR_CLIENT_DPOP", "cli-dpop")
TOKEN_URL = f"{ISSUER}/oauth2/token"


class CheckFailed(Exception):
    pass


def expect(condition, message):
    if not condition:
        raise CheckFailed(message)


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_of(jwt):
    body = jwt.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))


state = {}


def client():
    # `testing`: rotor under test listens on loopback http, not https.
    return OAuth2Client(token_endpoint=TOKEN_URL, client_id=CLIENT_ID, testing=True)


def check_password_grant():
    key = DPoPKey.generate(alg="ES256")
    token = client().resource_owner_password(USERNAME, PASSWORD, dpop_key=key)
    expect(isinstance(token, DPoPToken), f"a DPoP token, got {type(token).__name__}")
    expect(token.token_type == "DPoP", f"token_type DPoP, got {token.token_type}")
    jkt = claims_of(token.access_token).get("cnf", {}).get("jkt")
    expect(jkt == key.dpop_jkt, f"cnf.jkt is the key's thumbprint ({jkt} != {key.dpop_jkt})")
    state["key"], state["token"] = key, token


def check_refresh():
    token = state["token"]
    thief = DPoPKey.generate(alg="ES256")
    try:
        # The library proves a refresh with the token's own key: the thief's copy.
        stolen = DPoPToken(access_token=token.access_token, refresh_token=token.refresh_token, _dpop_key=thief)
        client().refresh_token(stolen)
    except InvalidGrant:
        pass
    else:
        raise CheckFailed("a refresh with another key succeeded")
    renewed = client().refresh_token(token)  # the token's own key
    expect(isinstance(renewed, DPoPToken), "the refreshed token is DPoP-bound")
    expect(renewed.refresh_token != token.refresh_token, "the refresh token rotates")
    state["token"] = renewed


def check_resource():
    token = state["token"]
    response = requests.get(f"{ISSUER}/api/v1/me", auth=token, timeout=10)
    expect(response.status_code == 200, f"/api/v1/me with a proof: {response.status_code} {response.text}")
    expect(response.json().get("client_id") == CLIENT_ID, "the resource names the client")
    bearer = requests.get(
        f"{ISSUER}/api/v1/me", headers={"Authorization": f"Bearer {token.access_token}"}, timeout=10
    )
    expect(bearer.status_code == 401, f"as Bearer: {bearer.status_code}")
    expect(
        bearer.headers.get("WWW-Authenticate", "").startswith('DPoP error="invalid_token"'),
        f"a DPoP challenge: {bearer.headers.get('WWW-Authenticate')}",
    )


def nonce():
    """A current nonce of the token endpoint, from its use_dpop_nonce answer."""
    key = DPoPKey.generate(alg="ES256")
    response = post(str(key.proof(htm="POST", htu=TOKEN_URL)))
    expect(response.json().get("error") == "use_dpop_nonce", f"use_dpop_nonce: {response.text}")
    return response.headers["DPoP-Nonce"]


def post(proof):
    return requests.post(
        TOKEN_URL,
        data={"grant_type": "password", "username": USERNAME, "password": PASSWORD, "client_id": CLIENT_ID},
        headers={"DPoP": proof},
        timeout=10,
    )


def signed(key, claims, headers):
    return jwt.encode(claims, key, algorithm="ES256", headers={"typ": "dpop+jwt", **headers})


def check_negative_proofs():
    current = nonce()
    key = ec.generate_private_key(ec.SECP256R1())
    public_jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True)
    private_jwk = ECAlgorithm.to_jwk(key, as_dict=True)

    def claims(**extra):
        base = {"jti": str(uuid.uuid4()), "htm": "POST", "htu": TOKEN_URL, "iat": int(time.time()), "nonce": current}
        base.update(extra)
        return base

    public = {"jwk": public_jwk}
    unsigned_header = b64(json.dumps({"typ": "dpop+jwt", "alg": "none", "jwk": public_jwk}).encode())
    cases = {
        "wrong htu": signed(key, claims(htu="https://elsewhere.example/oauth2/token"), public),
        "alg none": f"{unsigned_header}.{b64(json.dumps(claims()).encode())}.",
        "private key in jwk": signed(key, claims(), {"jwk": private_jwk}),
        "old iat": signed(key, claims(iat=int(time.time()) - 600), public),
    }
    for case, proof in cases.items():
        response = post(proof)
        expect(
            response.status_code == 400 and response.json().get("error") == "invalid_dpop_proof",
            f"{case}: {response.status_code} {response.text}",
        )
    good = signed(key, claims(), public)
    first = post(good)
    expect(first.status_code == 200, f"a good proof: {first.status_code} {first.text}")
    again = post(good)
    expect(again.json().get("error") == "invalid_dpop_proof", f"a replayed proof: {again.text}")


def main():
    expect(ISSUER, "ROTOR_ISSUER is not set: run tests/clients/run.sh, or export it")
    checks = [
        ("password grant with a DPoPKey: nonce learned, DPoP-bound token", check_password_grant),
        ("refresh: another key is invalid_grant, the token's own key rotates it", check_refresh),
        ("resource: /api/v1/me with a proof; as Bearer refused", check_resource),
        ("proofs built with PyJWT: wrong htu, alg none, private jwk, old iat, replay", check_negative_proofs),
    ]
    passed = failed = 0
    for name, check in checks:
        try:
            check()
        except Exception as error:  # noqa: BLE001 - every failure is reported, then counted
            failed += 1
            print(f"FAIL {name}: {type(error).__name__}: {error}")
            if os.environ.get("ROTOR_CLIENTS_DEBUG"):
                traceback.print_exc()
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"requests-oauth2client DPoP: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
