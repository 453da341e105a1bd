"""Secrets never reach a file or a log: URL passwords, query-string tokens and W&B keys are masked."""

from __future__ import annotations

import os
import re
from typing import Any

# scheme://user:password@host (a raw "@" inside the password included: the userinfo runs to the last "@")
_URL_USERINFO = re.compile(r"(?P<scheme>\b[A-Za-z][\w+.-]*://)(?P<userinfo>[^\s'\"<>]*)@")
_QUERY_SECRET = re.compile(
    r"(?i)(?P<key>[?&;](?:password|passwd|pwd|sslpassword|secret|token|api_key|apikey)=)[^&\s'\"<>#]*")


def _mask_userinfo(m: re.Match) -> str:
    info = m.group("userinfo")
    if ":" not in info:
        return m.group(0)  # a user name alone is no secret
    return f"{m.group('scheme')}{info.split(':', 1)[0]}:***@"


def mask_secrets(text: str) -> str:
    """Hide passwords in URLs (postgresql://u:pw@h, ://:pw@h, a raw @ in pw, ?password=…) and W&B keys."""
    text = _URL_USERINFO.sub(_mask_userinfo, text)
    text = _QUERY_SECRET.sub(lambda m: m.group("key") + "***", text)
    key = os.environ.get("WANDB_API_KEY")
    if key:
        text = text.replace(key, "***")
    return re.sub(r"\b[0-9a-f]{40}\b", "***", text)


def redact(text: str, url: str) -> str:
    """mask_secrets, and also every piece of the URL's password wherever it appears in `text` (a driver's
    error about an unparsable URL may quote the part after a raw "@" of the password as a host name)."""
    found = [m.group("userinfo").split(":", 1)[1] for m in _URL_USERINFO.finditer(url) if ":" in m.group("userinfo")]
    found += [m.group(0).split("=", 1)[1] for m in _QUERY_SECRET.finditer(url)]
    pieces = {p for pw in found for p in [pw, *pw.split("@")] if len(p) >= 3}
    for piece in sorted(pieces, key=len, reverse=True):
        text = text.replace(piece, "***")
    return mask_secrets(text)


def masked(obj: Any) -> Any:
    """A copy of a config dict / list with every string passed through mask_secrets."""
    if isinstance(obj, str):
        return mask_secrets(obj)
    if isinstance(obj, dict):
        return {k: masked(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [masked(v) for v in obj]
    return obj
