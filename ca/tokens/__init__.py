"""Token handling, once for every kind of token the CA accepts.

`jws`: decoding without trust (`peek`), the algorithm policy and signature checks.
`claims`: the registered claims (`check_registered`), audiences and the single-use key.
What a token *authorizes* is its provisioner's business (`ca.provisioners`, with SSHPOP
and x5cInsecure renewal tokens there too); spending it is the ledger's (`used_tokens`,
inside the append).
"""

from ca.tokens.claims import (
    DEFAULT_LEEWAY,
    LEGACY_AUDIENCE,
    RENEW_TOKEN_ISSUER,
    Registered,
    audience_matches,
    audiences,
    check_registered,
    matching_audience,
    token_id,
)
from ca.tokens.jws import (
    UnverifiedToken,
    algorithms_for,
    b64url,
    check_algorithm,
    peek,
    verify_signature,
    verify_signed_by_key,
)

__all__ = [
    "DEFAULT_LEEWAY",
    "LEGACY_AUDIENCE",
    "RENEW_TOKEN_ISSUER",
    "Registered",
    "UnverifiedToken",
    "algorithms_for",
    "audience_matches",
    "audiences",
    "b64url",
    "check_algorithm",
    "check_registered",
    "matching_audience",
    "peek",
    "token_id",
    "verify_signature",
    "verify_signed_by_key",
]
