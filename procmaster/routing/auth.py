"""HTTP basic authentication for the ``basicauth`` route action.

Theory of operation
-------------------
``basicauth:REALM,USER:PASSWORD`` compares the decoded ``Authorization: Basic``
credentials with the pair (in constant time). ``basicauth:REALM,FILE`` reads an
htpasswd file on each request, as uWSGI does (so edits count at once), and
checks the password against the user's hash:

* ``{SHA}`` (base64 SHA-1, ``htpasswd -s``): with ``hashlib``;
* ``crypt(3)`` hashes (DES, ``$1$`` MD5, ``$5$``/``$6$`` SHA-crypt, ``$2y$``
  bcrypt where the system's libcrypt has it): through the ``crypt`` module when
  this Python still has it (removed in 3.13), as uWSGI calls ``crypt(3)``;
* ``$apr1$`` (Apache's MD5, ``htpasswd -m``): not supported, as in uWSGI (glibc's
  crypt does not know it); such a line never matches.

``check`` returns the user name for ``REMOTE_USER``, or None.

Must not know: the rest of routing, sockets, workers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import warnings

__all__ = ["check"]

_crypt = None  # the crypt module, imported on first use of a crypt(3) hash


def check(authorization: str, cred: str) -> str | None:
    """The user the ``Authorization`` header proves, against ``cred`` (USER:PASSWORD
    or an htpasswd file), or None."""
    if not authorization.startswith("Basic "):
        return None
    try:
        raw = base64.b64decode(authorization[6:].strip(), validate=True)
    except (binascii.Error, ValueError):
        return None
    pair = raw.decode("latin-1")
    user, colon, password = pair.partition(":")
    if not colon:
        return None
    if ":" in cred:  # an inline USER:PASSWORD
        if hmac.compare_digest(pair.encode("latin-1"), cred.encode("latin-1", "replace")):
            return user
        return None
    return user if _htpasswd(cred, user, password) else None


def _htpasswd(path: str, user: str, password: str) -> bool:
    try:
        with open(path, encoding="latin-1") as fh:
            lines = fh.read(1 << 20).splitlines()
    except OSError:
        return False
    for line in lines:
        name, colon, hashed = line.strip().partition(":")
        if colon and name == user and _verify(password, hashed):
            return True
    return False


def _verify(password: str, hashed: str) -> bool:
    if hashed.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(password.encode("latin-1")).digest()).decode()
        return hmac.compare_digest(digest, hashed[5:])
    if hashed.startswith("$apr1$"):
        return False
    crypt = _crypt_module()
    if crypt is None:
        return False
    try:
        result = crypt.crypt(password, hashed)
    except (OSError, ValueError):
        return False
    return bool(result) and hmac.compare_digest(result, hashed)


def _crypt_module():
    """Lazily: only htpasswd files with crypt(3) hashes need it, and Python 3.13
    no longer has it."""
    global _crypt
    if _crypt is None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                import crypt  # noqa: PLC0415
            _crypt = crypt
        except ImportError:
            _crypt = False
    return _crypt or None
