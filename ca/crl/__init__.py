"""Certificate revocation lists, all derived from the ledger.

* `builder` — the pure CRL assembly and signature (clock passed in);
* `records` — what a CRL is made from and what was published, read from the projections;
* `publisher` — the follower that signs CRLs and records them as `crl.published`;
* `index` — the OpenSSL CA database (`index.txt`);
* `root` — the offline root's CRL, for revoking an intermediate;
* `urls` — the distribution-point URLs leaves and CRLs carry.

The HTTP route is `ca.api.crl`; the CLI verbs are in `ca.cli.crl`.
"""
