"""One-shot `pki` service of compose.yaml: the kube-apiserver's ServiceAccount signing key.

    python make_pki.py DIR    writes DIR/sa.key and DIR/sa.pub once (kept on later runs)

Runs in the ripple-watcher image (its venv has `cryptography`). The apiserver makes its own
self-signed serving certificate (--cert-dir); clients authenticate with the static dev token
of tokens.csv, so nothing else is needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


def main(directory: str) -> None:
    out = Path(directory)
    key_path, pub_path = out / "sa.key", out / "sa.pub"
    if key_path.is_file() and pub_path.is_file():
        print(f"pki: {key_path} exists, kept")
        return
    out.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    pub_path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    print(f"pki: wrote {key_path} and {pub_path}")


if __name__ == "__main__":
    main(sys.argv[1])
