"""Which webhook URLs rldojo may POST to: the URL and its resolved addresses in, a verdict out.

A webhook is a URL any owner with a token registers, and the API host then sends requests to
it: without rules that is a way into everything the API host reaches (the Ray dashboard, the
database's neighbours, cloud metadata at 169.254.169.254). The rules:

- `https` only, unless the operator allows `http` (`RLDOJO_WEBHOOK_ALLOW_HTTP=true`);
- no user info (`user:pass@`), no control characters, spaces or non-ASCII characters anywhere
  (a CRLF would split the request), no IPv6 zone ids;
- the host is read the way browsers and C libraries read it, so `2130706433`, `127.1`,
  `0x7f.1` and `0177.0.0.1` are all 127.0.0.1, and `[::ffff:127.0.0.1]` is too; such odd
  spellings are refused even where the address itself is allowed (write `127.0.0.1`);
- every address the host resolves to must be global unicast: one loopback, private,
  link-local, multicast, reserved, unspecified or shared address refuses the URL. An IPv6
  address that carries an IPv4 one (mapped, compatible, NAT64, 6to4) is judged by that IPv4
  address; Teredo is refused;
- the operator's allow-list (`RLDOJO_WEBHOOK_ALLOW=hooks.internal,10.0.0.0/8`) lets internal
  receivers through: a host named there may resolve to any unicast address, and an address
  inside a network named there is allowed. Unspecified and multicast addresses never are.

`check` is pure (no I/O); `resolve_and_check` adds the resolution, through an injectable
resolver. The sender connects to `Verdict.address`, the address that was checked, so a name
that resolves differently a moment later (DNS rebinding) cannot move the request elsewhere.

Example:
    >>> policy = Policy()
    >>> check("http://127.1/hook", [], policy).reason
    'http is not allowed: use https'
    >>> check("https://127.1/hook", [], policy).reason
    '127.1 is 127.0.0.1, a loopback address'
    >>> check("https://hooks.example/x", ["93.184.216.34"], policy).address
    IPv4Address('93.184.216.34')
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
# (host, port) -> the addresses it resolves to, as strings; raises OSError when it cannot.
Resolver = Callable[[str, int], Sequence[str]]

_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")  # a last label like this means IPv4
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class Refused(ValueError):
    """A URL or an address the rules refuse; the message says why."""


@dataclass(frozen=True)
class Policy:
    """What the operator allows beyond global https receivers.

    Attributes:
        allow_http: plain `http` URLs are allowed too.
        hosts: host names whose addresses are all allowed (lower case, no trailing dot).
        networks: networks whose addresses are allowed.
    """

    allow_http: bool = False
    hosts: frozenset[str] = frozenset()
    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def from_entries(cls, entries: Iterable[str], allow_http: bool = False) -> Policy:
        """A policy from allow-list entries (host names, addresses, CIDRs).

        Raises:
            ValueError: an entry is neither a network nor a host name.
        """
        hosts, networks = set(), []
        for entry in entries:
            _, value = allow_entry(entry)
            if isinstance(value, str):
                hosts.add(value)
            else:
                networks.append(value)
        return cls(allow_http=allow_http, hosts=frozenset(hosts), networks=tuple(networks))

    def allows(self, address: IPAddress) -> bool:
        """True when `address` lies in an allowed network."""
        return any(address in network for network in self.networks)


def allow_entry(entry: str) -> tuple[str, str | IPNetwork]:
    """One allow-list entry as ("network", network) or ("host", name).

    Raises:
        ValueError: it is neither.

    Example:
        >>> allow_entry("10.0.0.0/8"), allow_entry("Hooks.Internal.")
        (('network', IPv4Network('10.0.0.0/8')), ('host', 'hooks.internal'))
    """
    text = entry.strip()
    try:
        return "network", ipaddress.ip_network(text.strip("[]"), strict=False)
    except ValueError:
        pass
    name = text.lower().rstrip(".")
    labels = name.split(".")
    if not name or _NUMERIC_LABEL.match(labels[-1]) or not all(map(_LABEL.match, labels)):
        raise ValueError(f"{entry!r} is neither a host name nor an address or CIDR network")
    return "host", name


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: what to connect to and what to send.

    Attributes:
        scheme: "https" or "http".
        host: the host, lower case, without a trailing dot or IPv6 brackets.
        port: the port (the scheme's default when the URL names none).
        path: the path and query sent in the request line ("/" when empty).
        literal: the address when the host is one (in any spelling), else None.
        spelled: the host as the URL writes it (for messages).
    """

    scheme: str
    host: str
    port: int
    path: str
    literal: IPAddress | None = None
    spelled: str = ""

    @property
    def host_header(self) -> str:
        """The Host header's value: the host (IPv6 bracketed), with a non-default port."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if _DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"

    def url_for(self, address: IPAddress) -> str:
        """The URL that connects to `address` itself (the host goes in the Host header)."""
        host = f"[{address}]" if address.version == 6 else str(address)
        return f"{self.scheme}://{host}:{self.port}{self.path}"


@dataclass(frozen=True)
class Verdict:
    """The outcome of a check.

    Attributes:
        allowed: the URL may be POSTed to.
        reason: why not (empty when allowed).
        target: the parsed URL (None when it does not parse).
        address: the checked address to connect to (when allowed).
        temporary: refused only because the host did not resolve now (worth a retry).
    """

    allowed: bool
    reason: str = ""
    target: Target | None = None
    address: IPAddress | None = None
    temporary: bool = False
    addresses: tuple[IPAddress, ...] = field(default=())


def parse(url: str, policy: Policy) -> Target:
    """The URL's parts, refused when its syntax breaks a rule (no I/O).

    Raises:
        Refused: the scheme, user info, a character, the host or the port is not allowed.
    """
    _check_characters(url)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise Refused(f"not a valid URL: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise Refused(f"{scheme or 'no'} scheme: use https")
    if scheme == "http" and not policy.allow_http:
        raise Refused("http is not allowed: use https")
    if "@" in parts.netloc:
        raise Refused("user info (user:password@) is not allowed in a webhook URL")
    spelled = parts.hostname or ""
    if not spelled:
        raise Refused("the URL has no host")
    if port == 0:
        raise Refused("port 0 is not allowed")
    host, literal = _read_host(spelled)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(scheme, host, port or _DEFAULT_PORTS[scheme], path, literal, spelled)


def check(url: str, addresses: Iterable[str | IPAddress], policy: Policy) -> Verdict:
    """The verdict on `url` whose host resolved to `addresses` (ignored for an address host).

    Pure: nothing is resolved or connected to. Every address must pass; the first one is
    the one to connect to.
    """
    try:
        target = parse(url, policy)
    except Refused as refused:
        return Verdict(False, str(refused))
    try:
        found = _addresses(target, addresses)
    except ValueError as error:
        return Verdict(False, f"{target.host} resolved to an unreadable address: {error}", target)
    if not found:
        return Verdict(False, f"{target.host} resolves to no address", target, temporary=True)
    try:
        for address in found:
            _judge(target, address, policy)
        if target.literal is not None:
            _check_spelling(target)
    except Refused as refused:
        return Verdict(False, str(refused), target, addresses=found)
    return Verdict(True, "", target, found[0], addresses=found)


def resolve_and_check(url: str, policy: Policy, resolver: Resolver | None = None) -> Verdict:
    """`check` with the host resolved by `resolver` (default: the system's, getaddrinfo)."""
    try:
        target = parse(url, policy)
    except Refused as refused:
        return Verdict(False, str(refused))
    if target.literal is not None:
        return check(url, (), policy)
    try:
        addresses = (resolver or system_resolver)(target.host, target.port)
    except (OSError, UnicodeError) as error:
        reason = f"cannot resolve {target.host}: {error}"
        return Verdict(False, reason, target, temporary=True)
    return check(url, addresses, policy)


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `socket.getaddrinfo` gives for `host` (TCP), in its order."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in found))


# ---- the rules ---------------------------------------------------------------------------


def _check_characters(url: str) -> None:
    for position, character in enumerate(url):
        code = ord(character)
        if code <= 0x20 or code == 0x7F:
            raise Refused(f"control character or space U+{code:04X} at position {position}")
        if code > 0x7E:
            raise Refused(f"non-ASCII character at position {position}: percent-encode it")
        if character == "\\":
            raise Refused(f"backslash at position {position}")


def _read_host(spelled: str) -> tuple[str, IPAddress | None]:
    """The host normalised, and its address when it is one (IPv4 in any spelling, IPv6)."""
    if "%" in spelled:
        raise Refused("a percent sign (an IPv6 zone id, an encoded character) in the host")
    if ":" in spelled:
        try:
            address = ipaddress.IPv6Address(spelled)
        except ValueError:
            raise Refused(f"{spelled} is not a valid IPv6 address") from None
        return str(address), address
    host = spelled.lower().removesuffix(".")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):  # WHATWG: a host ending in a number is IPv4
        v4 = _ipv4_any_spelling(host)
        return str(v4), v4
    if len(host) > 253 or not all(_LABEL.match(label) for label in labels):
        raise Refused(f"{spelled} is not a valid host name")
    return host, None


def _ipv4_any_spelling(host: str) -> ipaddress.IPv4Address:
    """IPv4 as URL parsers and inet_aton read it: 1-4 parts, each decimal, 0x-hex or 0-octal,
    the last part filling the remaining bytes (`127.1`, `2130706433`, `0x7f.0.0.1`)."""
    parts = host.split(".")
    try:
        numbers = [_ipv4_part(part) for part in parts]
    except ValueError:
        raise Refused(f"{host} is not a valid IPv4 address") from None
    if len(numbers) > 4 or any(n > 255 for n in numbers[:-1]):
        raise Refused(f"{host} is not a valid IPv4 address")
    value = numbers[-1]
    if value >= 256 ** (5 - len(numbers)):
        raise Refused(f"{host} is not a valid IPv4 address")
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return ipaddress.IPv4Address(value)


def _ipv4_part(part: str) -> int:
    if part.startswith("0x"):
        return int(part[2:] or "0", 16)
    if len(part) > 1 and part.startswith("0"):
        return int(part, 8)
    return int(part, 10)


def _addresses(target: Target, resolved: Iterable[str | IPAddress]) -> tuple[IPAddress, ...]:
    if target.literal is not None:
        return (target.literal,)
    return tuple(
        ipaddress.ip_address(a.split("%", 1)[0]) if isinstance(a, str) else a  # zone ids: moot
        for a in resolved
    )


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, compatible, NAT64, 6to4), if any."""
    if address.version == 4:
        return None
    assert isinstance(address, ipaddress.IPv6Address)
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64 or (int(address) >> 32 == 0 and int(address) > 1):  # NAT64, ::a.b.c.d
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def _judge(target: Target, address: IPAddress, policy: Policy) -> None:
    """Refuse `address` (one of `target`'s) unless it is global unicast or allowed."""
    inner = _embedded_ipv4(address)
    judged: IPAddress = inner or address
    if judged.is_unspecified or judged.is_multicast:
        raise Refused(_describe(target, address, inner, _kind(judged)))
    if target.host in policy.hosts or policy.allows(address) or policy.allows(judged):
        return
    if address.version == 6 and address in _TEREDO:
        raise Refused(_describe(target, address, None, "a Teredo address"))
    kind = _kind(judged)
    if kind:
        raise Refused(_describe(target, address, inner, kind))


def _kind(address: IPAddress) -> str:
    """What keeps `address` from being a receiver ("" when it is global unicast)."""
    for flag, kind in (
        ("is_unspecified", "the unspecified address"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_reserved", "a reserved address"),
        ("is_private", "a private address"),
    ):
        if getattr(address, flag):
            return kind
    return "" if address.is_global else "not a global address"


def _describe(
    target: Target, address: IPAddress, inner: ipaddress.IPv4Address | None, kind: str
) -> str:
    carried = f" (IPv4 {inner})" if inner is not None else ""
    if target.literal is None:
        return f"{target.host} resolves to {address}{carried}, {kind}"
    if target.spelled != str(address):
        return f"{target.spelled} is {inner or address}, {kind}"
    return f"{address}{carried} is {kind}"


def _check_spelling(target: Target) -> None:
    """An allowed address written oddly is still refused: the URL must say what it means."""
    assert target.literal is not None
    inner = _embedded_ipv4(target.literal)
    if target.literal.version == 4 and target.spelled.lower().rstrip(".") != target.host:
        raise Refused(f"{target.spelled} is an unusual spelling of {target.host}: write that")
    if inner is not None:
        raise Refused(f"{target.spelled} carries IPv4 {inner}: write {inner}")
