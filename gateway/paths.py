"""Dot segments in proxied paths: `/auth/../readyz` must not reach the auth service's `/readyz`.

The HTTP client would resolve a literal `..` itself (httpx follows RFC 3986), and a browser
or another proxy treats `%2e%2e` as `..` too (WHATWG URL). So the gateway resolves both
spellings once, refuses a path that leaves its prefix, and forwards the resolved path: the
upstream gets exactly the path that was checked. Other percent-escapes stay as they came.
"""

from __future__ import annotations

import re

# `.` or `..` written with any mix of `.`, `%2e` and `%2E`.
_DOT_SEGMENT = re.compile(r"(?:\.|%2e){1,2}", re.IGNORECASE)


def _dots(segment: str) -> str | None:
    """'.' or '..' when `segment` is a dot segment in any spelling, else None."""
    if _DOT_SEGMENT.fullmatch(segment) is None:
        return None
    return segment.lower().replace("%2e", ".")


def resolve_dot_segments(path: str) -> str:
    """`path` with its `.` and `..` segments (also percent-encoded) resolved, as RFC 3986 5.2.4."""
    segments = path.split("/")[1:]
    resolved: list[str] = []
    for index, segment in enumerate(segments):
        dots = _dots(segment)
        if dots is None:
            resolved.append(segment)
            continue
        if dots == ".." and resolved:
            resolved.pop()
        if index == len(segments) - 1:
            resolved.append("")  # `/a/b/..` is the directory `/a/`
    return "/" + "/".join(resolved)


def path_under(prefix: str, path: str) -> str | None:
    """The resolved `path` when it stays under `prefix` (e.g. `/auth`), else None."""
    resolved = resolve_dot_segments(path)
    return resolved if resolved.startswith(prefix + "/") else None
