"""What no leaf may carry, however its template, provisioner or request was written.

A leaf that can sign OCSP responses, certificates or CRLs, that constrains names, that
claims a CA's own subject, or that points relying parties at an OCSP responder or issuer
the CA did not configure, is a CA power handed to whoever holds its key: with `ocspSigning`
and the intermediate's subject, a leaf signs a "good" answer for a revoked certificate and
`openssl ocsp` believes it. `refuse_authority_powers` is the one rule. `ca.pki.issuer.check`
applies it to every certificate before it is signed (issuance, renewal, rekey, the CA's own
TLS certificate) and, through `ca.pki.issuer.check_template`, to a provisioner's template
when it is added or changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from cryptography import x509
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from ca.errors import PolicyError

E = TypeVar("E", bound=x509.ExtensionType)


@dataclass(frozen=True)
class LeafRules:
    ca_subjects: tuple[x509.Name, ...] = ()
    """The subjects of the CA's roots and intermediates: no leaf may claim one."""
    ocsp_urls: tuple[str, ...] = ()
    """The OCSP responders the operator configured (`ocsp_url`): the only AIA a leaf gets."""

    @classmethod
    def of(
        cls, certificates: tuple[x509.Certificate | None, ...], ocsp_urls: tuple[str, ...]
    ) -> LeafRules:
        return cls(tuple(c.subject for c in certificates if c is not None), ocsp_urls)


def refuse_authority_powers(
    subject: x509.Name, extensions: x509.Extensions, rules: LeafRules
) -> None:
    """PolicyError (403) when a certificate with this subject and these extensions would
    hold a power only the CA may hold."""
    constraints = _get(extensions, x509.BasicConstraints)
    if constraints is not None and constraints.ca:
        raise PolicyError("a leaf cannot be a CA (basicConstraints CA:TRUE)")
    usage = _get(extensions, x509.KeyUsage)
    if usage is not None and (usage.key_cert_sign or usage.crl_sign):
        raise PolicyError("a leaf cannot sign certificates or CRLs (keyUsage certSign, crlSign)")
    purposes = _get(extensions, x509.ExtendedKeyUsage)
    if purposes is not None and ExtendedKeyUsageOID.OCSP_SIGNING in purposes:
        raise PolicyError("a leaf cannot sign OCSP responses (extKeyUsage ocspSigning)")
    if _get(extensions, x509.NameConstraints) is not None:
        raise PolicyError("a leaf cannot carry name constraints")
    if _get(extensions, x509.CertificatePolicies) is not None:
        raise PolicyError("a leaf cannot carry certificate policies the CA did not configure")
    access = _get(extensions, x509.AuthorityInformationAccess)
    for description in access or ():
        url = description.access_location.value
        if description.access_method != AuthorityInformationAccessOID.OCSP or (
            url not in rules.ocsp_urls
        ):
            raise PolicyError(
                f"a leaf cannot point at {str(url)[:80]!r}: the CA adds only its configured"
                " ocsp_url to authorityInfoAccess"
            )
    if len(subject) and subject in rules.ca_subjects:
        raise PolicyError(f"a leaf cannot have a CA's subject {subject.rfc4514_string()!r}")


def _get(extensions: x509.Extensions, kind: type[E]) -> E | None:
    try:
        return extensions.get_extension_for_class(kind).value
    except x509.ExtensionNotFound:
        return None
