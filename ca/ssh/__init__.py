"""The SSH certificate authority: user and host CA keys, certificates, SSHPOP, KRL, config.

* `keys`: SSH CA key files and their `authority.key_activated` payloads (roles `ssh_user`,
  `ssh_host`); OpenSSH wire encodings of public keys.
* `activation`: `ledgerca ssh init` and `ssh rotate` on an existing CA.
* `certificates`: parsing a client's public key, building and signing a certificate.
* `validity`: the SSH claims (min/default/max per certificate type) applied to a request.
* `options`: step's `step.ssh` token claims merged with the request; principal policies.
* `sshpop`: SSH proof-of-possession tokens, for renew, rekey and revoke.
* `issuance`: the sign pipeline — authenticate, authorize, sign, record, respond.
* `lifecycle`: renew and rekey (SSHPOP), revoke.
* `inventory`: what the projections say (hosts, status, revoked serials per CA key).
* `krl`: OpenSSH key revocation lists (PROTOCOL.krl).
* `config`: step-ca's ssh_config / known_hosts / sshd_config templates for `/ssh/config`.
* `bastion`: which jump host `/ssh/bastion` names for a host (`[[ssh_bastions]]`).
"""
