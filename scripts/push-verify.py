#!/usr/bin/env python3
"""Checks Web Push requests a node sent, with implementations nobody here wrote.

Reads a JSON file (argv[1]):
  {"private_key": b64url 32-byte P-256 scalar of the browser,
   "auth": b64url 16-byte auth secret,
   "vapid_public_key": the node's b64url uncompressed P-256 key,
   "audience": the push service's origin,
   "requests": [{"headers": {...}, "body_b64": standard base64}, ...]}
For every request: checks the headers (aes128gcm, TTL, Urgency), verifies the
VAPID JWT (RFC 8292) against the node's key with `cryptography`, and decrypts
the body with `http_ece` (version="aes128gcm", RFC 8291). Prints the
plaintexts as a JSON list; exits non-zero on the first failure.
"""

import base64
import json
import sys
import time

import http_ece
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def b64d(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def main():
    spec = json.load(open(sys.argv[1]))
    browser = ec.derive_private_key(
        int.from_bytes(b64d(spec["private_key"]), "big"), ec.SECP256R1()
    )
    auth = b64d(spec["auth"])
    vapid = ec.EllipticCurvePublicKey.from_encoded_point(
        ec.SECP256R1(), b64d(spec["vapid_public_key"])
    )
    out = []
    for request in spec["requests"]:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert headers["content-encoding"] == "aes128gcm", headers
        assert int(headers["ttl"]) >= 0, headers
        assert headers["urgency"] in ("very-low", "low", "normal", "high"), headers
        scheme, _, params = headers["authorization"].partition(" ")
        assert scheme == "vapid", headers["authorization"]
        fields = dict(p.strip().split("=", 1) for p in params.split(","))
        assert fields["k"] == spec["vapid_public_key"], "k is not the node's key"
        head, claims, signature = fields["t"].split(".")
        assert json.loads(b64d(head))["alg"] == "ES256"
        claims_json = json.loads(b64d(claims))
        assert claims_json["aud"] == spec["audience"], claims_json
        now = time.time()
        assert now < claims_json["exp"] <= now + 24 * 3600, claims_json
        assert claims_json["sub"].startswith(("mailto:", "https:")), claims_json
        raw = b64d(signature)
        assert len(raw) == 64, "ES256 signatures are r || s"
        der = encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
        # Raises InvalidSignature if the JWT was not signed by the node's key.
        vapid.verify(der, f"{head}.{claims}".encode(), ec.ECDSA(hashes.SHA256()))
        body = base64.b64decode(request["body_b64"])
        plain = http_ece.decrypt(
            body, private_key=browser, auth_secret=auth, version="aes128gcm"
        )
        out.append(plain.decode("utf-8"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
