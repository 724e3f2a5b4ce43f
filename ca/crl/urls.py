"""Where CRLs (and OCSP) are found, and which certificates a CRL says it covers.

A CRL's scope and the leaves' CRL Distribution Points must agree. OpenSSL (through 3.x)
takes a CRL whose Issuing Distribution Point names a URI as covering only certificates whose
CRL Distribution Point names the same URI: a leaf without a CDP is then refused with
"different CRL scope" (error 44; openssl/openssl#23325, smallstep/certificates#2250), good
and revoked alike. step-ca puts that IDP on every CRL, its own URL by default, while its
leaves carry no CDP by default: out of the box, no leaf can be checked.

ledgerca publishes one complete CRL per intermediate, never a partition. So by default its
CRL has no Issuing Distribution Point: RFC 5280 §5.2.5 then makes it cover every certificate
the intermediate signed, whatever CDP each carries or lacks — leaves issued before `crl_url`
was set, leaves whose template chose its own CDP, the CA's own TLS certificate. This is the
only choice right for the default init too: leaves get no guessed CDP there (the CA cannot
know the address relying parties reach it at, and a URL nobody serves makes strict relying
parties fail hard, which is why step-ca adds none).

* `crl_url` — the CRL Distribution Point new leaves carry (the template's own, if it sets
  one, wins). The CRL stays complete, without an IDP.
* `crl.idp_url` — step-ca's `idpURL`, for whoever wants a scoped CRL: the CRL names it in a
  critical IDP, and new leaves carry it as their CDP so they are in that scope.
  Certificates without it (older leaves, the CA's TLS certificate) are then out of scope.
  With both set they must be the same URL: a leaf pointed at one URL could not be checked
  with a CRL claiming another (`ca.config` refuses the mismatch).

The offline root's CRL (`ca.crl.root`) is complete for the same reason: it covers the
intermediate whether or not `init --intermediate-crl-url` gave it a CDP.
"""

from __future__ import annotations

from ca.config import CAConfig

__all__ = ["idp_url", "leaf_crl_url", "leaf_urls"]


def idp_url(config: CAConfig) -> str | None:
    """The URI the CRL's Issuing Distribution Point names: `crl.idp_url`, else None (no
    IDP: a complete CRL covering every certificate of the issuer)."""
    return config.crl.idp_url or None


def leaf_crl_url(config: CAConfig) -> str | None:
    """The CRL Distribution Point new leaves carry: `crl_url`, else `crl.idp_url` (so leaves
    are in the scope a scoped CRL claims), else None."""
    return config.crl_url or config.crl.idp_url or None


def leaf_urls(config: CAConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(CRL distribution points, OCSP responders) for the leaves the CA issues.

    Only what the operator configured (`crl_url` or `crl.idp_url`, `ocsp_url`): step-ca
    adds neither by default, and a URL nobody serves makes strict relying parties fail hard.
    """
    crl_url = leaf_crl_url(config)
    crl = (crl_url,) if crl_url else ()
    ocsp = (config.ocsp_url,) if config.ocsp_url else ()
    return crl, ocsp
