"""Which private keys Envoy 1.40 (BoringSSL) loads: one rule for the translator's check of a
tenant's TLS Secret and the xds server's check before it serves one, so both refuse the same
keys (each confirmed with `envoy --mode validate`)."""

from __future__ import annotations

from typing import Final

from cryptography.hazmat.primitives.asymmetric import rsa

MIN_RSA_BITS: Final = 2048
EC_CURVES: Final = frozenset({"secp256r1", "secp384r1", "secp521r1"})


def rsa_consistent(key: rsa.RSAPrivateKey) -> bool:
    """Whether an RSA private key's numbers fit together (n = p*q, e*d = 1 mod p-1 and q-1,
    the CRT values), as BoringSSL's RSA_check_key requires when Envoy loads it (it refuses
    such a key with D_E_NOT_CONGRUENT_TO_1 and alike); no primality test, so microseconds
    where cryptography's own check takes 70 ms for 2048 bits and 600 ms for 4096."""
    numbers = key.private_numbers()
    p, q, d = numbers.p, numbers.q, numbers.d
    e, n = numbers.public_numbers.e, numbers.public_numbers.n
    return (
        p > 1
        and q > 1
        and p * q == n
        and (e * d) % (p - 1) == 1
        and (e * d) % (q - 1) == 1
        and numbers.dmp1 == d % (p - 1)
        and numbers.dmq1 == d % (q - 1)
        and (numbers.iqmp * q) % p == 1
    )
