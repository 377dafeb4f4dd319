"""Nothing secret goes into a result: credentials written into a storage URI
(``s3://KEY:SECRET@bucket/...``, ``?secret_key=...``) are masked in manifests and study.json.
Give cloud credentials through the environment or an instance role instead; a trial's plan
keeps the storage location its workers need."""

from __future__ import annotations

import re
from typing import Any

_USERINFO = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)[^/@\s]+@")
_SECRET_QUERY = re.compile(r"(?P<key>[?&](?:access_key|secret_key|session_token|token|password|sig|signature)=)[^&\s]*",
                           re.IGNORECASE)


def redact(value: Any) -> Any:
    """``value`` with credentials in any URI string replaced by ``***`` (mappings and lists walked)."""
    if isinstance(value, str):
        return _SECRET_QUERY.sub(r"\g<key>***", _USERINFO.sub(r"\g<scheme>***@", value))
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v) for v in value)
    return value
