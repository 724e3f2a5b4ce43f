"""The client side of ledgerca: talk to a CA (ledgerca or step-ca) as step's CLI does.

* `session` — the client's local state (`config/client.toml`, the pinned root), the
  bootstrap, an HTTP client that trusts that root only, step-ca error bodies as `CAError`s;
* `tokens` — provisioner lookup and JWK one-time tokens.

The verbs themselves (`bootstrap`, `token`, `certificate`, `inspect`) are in `ca.cli.client`.
"""

from ca.client.session import (
    CAResponseError,
    CAUnreachable,
    Session,
    TrustError,
    bootstrap,
    load_session,
)
from ca.client.tokens import ProvisionerSigner, load_signer, sign_audience, token_claims

__all__ = [
    "CAResponseError",
    "CAUnreachable",
    "ProvisionerSigner",
    "Session",
    "TrustError",
    "bootstrap",
    "load_session",
    "load_signer",
    "sign_audience",
    "token_claims",
]
