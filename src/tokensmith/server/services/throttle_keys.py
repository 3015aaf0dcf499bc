"""Throttle keys: usernames and client addresses in a canonical, bounded, unambiguous form."""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import unicodedata

__all__ = ["MAX_KEY_PART", "address_key", "subject_key"]

#: Longer parts are replaced by their SHA-256, so a hostile 60 KiB username costs a fixed
#: amount of memory in the store like any other.
MAX_KEY_PART = 200


def _bounded(text: str) -> str:
    if len(text) > MAX_KEY_PART:
        digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
        return f"sha256:{digest}"
    # "|" separates the parts of a key; escaping it (and "%") keeps "a|ip:b" + "c" apart
    # from "a" + "b|ip:c", so no username can share another pair's counter.
    return text.replace("%", "%25").replace("|", "%7C")


def subject_key(username: str) -> str:
    """NFKC, case-folded, NFKC again (case folding can leave non-NFKC text), bounded.

    Applied on top of the users table's own normalization it never separates two
    spellings that table merges, and it merges "Alice" and "ALICE" even for a caller that
    forgot to normalize.
    """
    if username.isascii():
        # ASCII is NFKC already and case-folds to its lower case: same key, no tables.
        return _bounded(username.lower())
    folded = unicodedata.normalize("NFKC", username).casefold()
    return _bounded(unicodedata.normalize("NFKC", folded))


@functools.lru_cache(maxsize=4096)
def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """IPv4 as is; IPv6 as its /``ipv6_prefix`` network; IPv4-mapped IPv6 as the IPv4.

    Anything that is not an IP address (a Unix socket, a test client's name) is kept as
    text, bounded. Results are cached (a pure function; at most 4096 addresses), since
    parsing an address costs more than the rest of a throttle check.
    """
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return _bounded(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(ip), ipv6_prefix), strict=False))
    return str(ip)
