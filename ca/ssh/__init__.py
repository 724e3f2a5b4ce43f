"""The SSH certificate authority: user and host CA keys, certificates, SSHPOP, KRL, config.

* `keys`: SSH CA keys — creation, activation as `authority.key_activated` (roles `ssh_user`,
  `ssh_host`), rotation; OpenSSH wire encodings of public keys.
* `certificates`: parsing a client's public key, building and signing a certificate.
* `validity`: the SSH claims (min/default/max per certificate type) applied to a request.
* `options`: step's `step.ssh` token claims merged with the request; principal policies.
* `sshpop`: SSH proof-of-possession tokens, for renew, rekey and revoke.
* `issuance`: the pipeline — authenticate, authorize, sign, record, respond.
* `inventory`: what the projections say (hosts, status, revoked serials per CA key).
* `krl`: OpenSSH key revocation lists (PROTOCOL.krl).
* `config`: `known_hosts` / ssh / sshd snippets for `/ssh/config`.
"""
