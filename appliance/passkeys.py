"""Passkey (WebAuthn) ceremonies, through py_webauthn: options out, verified answers in.

The appliance has one user, so every passkey belongs to the same user handle, derived from
the instance key (stable across restarts, meaningless elsewhere). Credentials are
discoverable (resident keys): signing in needs no user name, the browser offers the passkeys
it holds for this relying party. User verification is preferred, presence required.

The relying party id is the host name the browser uses (``localhost``, ``box.ts.net``): a
passkey made at one name works only there, which is WebAuthn's own phishing defence. IP
addresses cannot be relying party ids, so passkeys need a name (``http://localhost:3030``,
not ``http://127.0.0.1:3030``). All CBOR, COSE and signature work is the library's, which
is imported by the ceremony that needs it (a quarter of the API's start went to loading it,
and most starts see no passkey).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any

from appliance.auth import Passkey
from appliance.errors import InvalidInput, Unauthorized

RP_NAME = "Clauderon"
USER_NAME = "clauderon"
TIMEOUT_MS = 120_000


def user_handle(instance_key: bytes) -> bytes:
    return hmac.new(instance_key, b"webauthn-user", hashlib.sha256).digest()[:32]


def valid_rp_id(host: str) -> bool:
    """Whether a host name can be a relying party id (a domain name, not an IP address)."""
    bare = host.strip("[]")
    return bool(bare) and ":" not in bare and not bare.replace(".", "").isdigit()


@dataclass(frozen=True, slots=True, kw_only=True)
class NewPasskey:
    credential_id: str
    public_key: bytes
    sign_count: int
    backed_up: bool
    user_verified: bool


def registration_options(*, rp_id: str, instance_key: bytes, existing: list[Passkey],
                         display_name: str) -> tuple[dict[str, Any], bytes]:
    """The options for ``navigator.credentials.create`` (JSON) and their challenge."""
    from webauthn import generate_registration_options, options_to_json
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.structs import (
        AuthenticatorSelectionCriteria,
        PublicKeyCredentialDescriptor,
        ResidentKeyRequirement,
        UserVerificationRequirement,
    )

    options = generate_registration_options(
        rp_id=rp_id, rp_name=RP_NAME, user_name=USER_NAME, user_display_name=display_name,
        user_id=user_handle(instance_key), timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED),
        exclude_credentials=[PublicKeyCredentialDescriptor(id=base64url_to_bytes(k.credential_id))
                             for k in existing])
    return json.loads(options_to_json(options)), options.challenge


def verify_registration(credential: dict[str, Any], *, challenge: bytes, rp_id: str,
                        origin: str) -> NewPasskey:
    from webauthn import verify_registration_response
    from webauthn.helpers import bytes_to_base64url
    from webauthn.helpers.exceptions import WebAuthnException

    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, require_user_verification=False)
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise InvalidInput(f"the passkey could not be registered: {exc}",
                           field="credential") from exc
    return NewPasskey(credential_id=bytes_to_base64url(verified.credential_id),
                      public_key=verified.credential_public_key,
                      sign_count=verified.sign_count, backed_up=verified.credential_backed_up,
                      user_verified=verified.user_verified)


def login_options(*, rp_id: str) -> tuple[dict[str, Any], bytes]:
    """Options for ``navigator.credentials.get``: no allow-list (discoverable passkeys)."""
    from webauthn import generate_authentication_options, options_to_json
    from webauthn.helpers.structs import UserVerificationRequirement

    options = generate_authentication_options(
        rp_id=rp_id, timeout=TIMEOUT_MS,
        user_verification=UserVerificationRequirement.PREFERRED)
    return json.loads(options_to_json(options)), options.challenge


def credential_id_of(credential: dict[str, Any]) -> str:
    raw = credential.get("rawId", credential.get("id"))
    if not isinstance(raw, str) or not raw or len(raw) > 1024:
        raise InvalidInput("credential.id must be the passkey's base64url id",
                           field="credential")
    return raw


def verify_login(credential: dict[str, Any], *, key: Passkey, challenge: bytes, rp_id: str,
                 origin: str, instance_key: bytes) -> int:
    """Check a sign-in answer against the stored passkey; the new signature counter."""
    from webauthn import verify_authentication_response
    from webauthn.helpers import base64url_to_bytes
    from webauthn.helpers.exceptions import WebAuthnException

    response = credential.get("response")
    handle = response.get("userHandle") if isinstance(response, dict) else None
    try:
        if handle is not None and base64url_to_bytes(str(handle)) != user_handle(instance_key):
            raise Unauthorized("this passkey belongs to another appliance")
        verified = verify_authentication_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp_id,
            expected_origin=origin, credential_public_key=key.public_key,
            credential_current_sign_count=key.sign_count, require_user_verification=False)
    except (WebAuthnException, KeyError, TypeError, ValueError) as exc:
        raise Unauthorized(f"the passkey did not verify: {exc}") from exc
    return verified.new_sign_count
