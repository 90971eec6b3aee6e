"""The webhook target rules as pure functions: a URL and its resolved addresses in, a verdict
out. Nothing here resolves a name through DNS or connects anywhere: hosts resolve through a
stub (or, for `localhost`, /etc/hosts)."""

from __future__ import annotations

import ipaddress

import pytest
from pydantic import ValidationError

from service.settings import Settings
from service.webhook_targets import Policy, Target, check, parse, resolve_and_check

STRICT = Policy()  # the default: https to global addresses only
LOOPBACK_ALLOWED = Policy.from_entries(["127.0.0.1"], allow_http=True)  # the test server's

# Every spelling the probe got through, and their relatives: (URL, what the reason says).
REFUSED = [
    ("https://127.0.0.1/hook", "127.0.0.1 is a loopback address"),
    ("https://0.0.0.0/hook", "0.0.0.0 is the unspecified address"),
    ("https://2130706433/hook", "2130706433 is 127.0.0.1, a loopback address"),
    ("https://127.1/hook", "127.1 is 127.0.0.1, a loopback address"),
    ("https://0x7f.1/hook", "0x7f.1 is 127.0.0.1, a loopback address"),
    ("https://0x7F000001/hook", "0x7f000001 is 127.0.0.1, a loopback address"),
    ("https://0177.0.0.1/hook", "0177.0.0.1 is 127.0.0.1, a loopback address"),
    ("https://127.0.0.1./hook", "127.0.0.1. is 127.0.0.1, a loopback address"),
    ("https://[::ffff:127.0.0.1]/hook", "::ffff:127.0.0.1 is 127.0.0.1, a loopback address"),
    ("https://[::ffff:7f00:1]/hook", "::ffff:7f00:1 (IPv4 127.0.0.1) is a loopback address"),
    ("https://[::127.0.0.1]/hook", "::127.0.0.1 is 127.0.0.1, a loopback address"),
    ("https://[::1]/hook", "::1 is a loopback address"),
    ("https://[::]/hook", ":: is the unspecified address"),
    ("https://[0:0:0:0:0:0:0:1]/hook", "0:0:0:0:0:0:0:1 is ::1, a loopback address"),
    ("https://[fe80::1%25eth0]/hook", "percent sign"),
    ("https://[fe80::1]/hook", "fe80::1 is a link-local address"),
    ("https://[fc00::5]/hook", "fc00::5 is a private address"),
    ("https://[ff02::1]/hook", "ff02::1 is a multicast address"),
    ("https://[64:ff9b::a9fe:a9fe]/", "(IPv4 169.254.169.254) is a link-local address"),
    ("https://[2002:a00:1::]/hook", "2002:a00:1:: (IPv4 10.0.0.1) is a private address"),
    ("https://[2001::1]/hook", "2001::1 is a Teredo address"),
    ("https://169.254.169.254/latest/meta-data", "169.254.169.254 is a link-local address"),
    ("https://10.0.0.8/hook", "10.0.0.8 is a private address"),
    ("https://172.16.4.1/hook", "172.16.4.1 is a private address"),
    ("https://192.168.1.1/hook", "192.168.1.1 is a private address"),
    ("https://100.64.0.1/hook", "100.64.0.1 is not a global address"),
    ("https://224.0.0.1/hook", "224.0.0.1 is a multicast address"),
    ("https://240.0.0.1/hook", "240.0.0.1 is a reserved address"),
    ("https://255.255.255.255/hook", "255.255.255.255 is a reserved address"),
    ("https://user:pass@127.0.0.1/hook", "user info"),
    ("https://user@hooks.example/hook", "user info"),
    ("http://127.0.0.1:18504/x\r\nInjected: 1", "control character or space U+000D"),
    ("https://hooks.example/a b", "control character or space U+0020"),
    ("https://hooks.example/\x00", "control character or space U+0000"),
    ("https://hooks.example/\t", "control character or space U+0009"),
    ("https://hooks.example/é", "non-ASCII"),
    ("https://hooks.example\\@127.0.0.1/", "backslash"),
    ("https://256.0.0.1/hook", "not a valid IPv4 address"),
    ("https://08.0.0.1/hook", "not a valid IPv4 address"),
    ("https://1.2.3.4.5/hook", "not a valid IPv4 address"),
    ("https://%31%32%37.0.0.1/hook", "percent sign"),
    ("https://hooks.example:0/hook", "port 0"),
    ("https://hooks.example:70000/hook", "not a valid URL"),
    ("https://[::1/hook", "not a valid URL"),
    ("https:///hook", "no host"),
    ("ftp://hooks.example/hook", "ftp scheme"),
    ("http://hooks.example/hook", "http is not allowed"),
    ("https://bad_host-.example/hook", "not a valid host name"),
]


@pytest.mark.parametrize(("url", "reason"), REFUSED)
def test_every_odd_spelling_and_forbidden_address_is_refused_with_its_reason(
    url: str, reason: str
) -> None:
    verdict = check(url, ["93.184.216.34"], STRICT)  # the resolved addresses of a name host
    assert not verdict.allowed and verdict.address is None
    assert reason in verdict.reason, verdict.reason


def test_a_global_https_receiver_is_allowed_and_the_checked_address_is_the_one_to_use() -> None:
    verdict = check("https://Hooks.Example.:8443/in?x=1#frag", ["93.184.216.34"], STRICT)
    assert verdict.allowed and verdict.address == ipaddress.ip_address("93.184.216.34")
    target = verdict.target
    assert target == Target("https", "hooks.example", 8443, "/in?x=1", None, "hooks.example.")
    assert target.host_header == "hooks.example:8443"
    assert target.url_for(verdict.address) == "https://93.184.216.34:8443/in?x=1"
    six = check("https://[2606:4700::1]/", [], STRICT)
    assert six.allowed and six.target is not None
    assert six.target.url_for(six.address) == "https://[2606:4700::1]:443/"  # type: ignore[arg-type]
    assert six.target.host_header == "[2606:4700::1]"


@pytest.mark.parametrize(
    ("addresses", "reason"),
    [
        (["127.0.0.1"], "hooks.example resolves to 127.0.0.1, a loopback address"),
        (["93.184.216.34", "10.1.2.3"], "resolves to 10.1.2.3, a private address"),
        (["2606:4700::1", "fe80::1%eth0"], "resolves to fe80::1, a link-local address"),
        (["::ffff:169.254.169.254"], "(IPv4 169.254.169.254), a link-local address"),
        ([], "resolves to no address"),
    ],
)
def test_a_name_is_refused_when_any_address_it_resolves_to_is_not_global(
    addresses: list[str], reason: str
) -> None:
    verdict = check("https://hooks.example/hook", addresses, STRICT)
    assert not verdict.allowed and reason in verdict.reason, verdict.reason


def test_a_hostname_that_resolves_to_loopback_is_refused_by_the_stub_and_the_system() -> None:
    stub = {"hooks.example": ["127.0.0.1"], "rebind.example": ["93.184.216.34", "::1"]}
    verdict = resolve_and_check("https://hooks.example/x", STRICT, lambda h, _p: stub[h])
    assert "hooks.example resolves to 127.0.0.1, a loopback address" == verdict.reason
    verdict = resolve_and_check("https://rebind.example/x", STRICT, lambda h, _p: stub[h])
    assert verdict.reason == "rebind.example resolves to ::1, a loopback address"
    # `localhost` through the system's resolver (/etc/hosts: no DNS query leaves the host)
    verdict = resolve_and_check("https://LOCALHOST./x", STRICT)
    assert not verdict.allowed and "localhost resolves to" in verdict.reason
    assert "a loopback address" in verdict.reason


def test_a_name_that_does_not_resolve_is_refused_as_temporary() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise OSError(f"no address for {host}")

    verdict = resolve_and_check("https://gone.example/x", STRICT, fails)
    assert not verdict.allowed and verdict.temporary
    assert "cannot resolve gone.example" in verdict.reason
    assert not check("https://127.0.0.1/", [], STRICT).temporary


def test_the_allow_list_lets_named_hosts_and_networks_through_but_nothing_else() -> None:
    policy = Policy.from_entries(["hooks.internal", "10.1.0.0/16", "::1"])
    assert check("https://hooks.internal/x", ["10.9.9.9", "127.0.0.1"], policy).allowed
    assert check("https://HOOKS.INTERNAL./x", ["10.9.9.9"], policy).allowed
    assert check("https://other.internal/x", ["10.1.2.3"], policy).allowed
    assert check("https://10.1.2.3/x", [], policy).allowed
    assert check("https://[::1]:9000/x", [], policy).allowed
    assert check("https://[::ffff:10.1.2.3]/", [], policy).reason == (
        "::ffff:10.1.2.3 carries IPv4 10.1.2.3: write 10.1.2.3"
    )
    assert "10.2.0.1 is a private address" in check("https://10.2.0.1/", [], policy).reason
    assert "127.0.0.1, a loopback" in check("https://other.internal/", ["127.0.0.1"], policy).reason
    # never the unspecified address nor multicast, whatever the list says
    everything = Policy.from_entries(["0.0.0.0/0", "::/0", "any.example"])
    assert "unspecified" in check("https://0.0.0.0/", [], everything).reason
    assert "multicast" in check("https://any.example/", ["239.1.1.1"], everything).reason
    assert "unspecified" in check("https://any.example/", ["::"], everything).reason


def test_an_allowed_address_in_an_odd_spelling_is_still_refused() -> None:
    assert check("http://127.0.0.1:9/x", [], LOOPBACK_ALLOWED).allowed
    assert check("http://localhost:9/x", ["127.0.0.1"], LOOPBACK_ALLOWED).allowed
    for odd in ("127.1", "2130706433", "0x7f.1", "0177.0.0.1"):
        verdict = check(f"http://{odd}:9/x", [], LOOPBACK_ALLOWED)
        assert verdict.reason == f"{odd} is an unusual spelling of 127.0.0.1: write that"
    assert "::1 is a loopback" in check("http://[::1]:9/x", [], LOOPBACK_ALLOWED).reason
    assert "user info" in check("http://u:p@127.0.0.1:9/", [], LOOPBACK_ALLOWED).reason


def test_http_only_when_the_operator_allows_it() -> None:
    assert check("http://hooks.example/", ["93.184.216.34"], STRICT).reason == (
        "http is not allowed: use https"
    )
    allowed = Policy(allow_http=True)
    assert parse("http://hooks.example/", allowed).port == 80


def test_the_settings_read_the_allow_list_and_refuse_a_bad_entry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("RLDOJO_WEBHOOK_ALLOW", "127.0.0.1, hooks.internal,10.0.0.0/8")
    monkeypatch.setenv("RLDOJO_WEBHOOK_ALLOW_HTTP", "true")
    settings = Settings(data_dir="/tmp/rldojo-webhook-settings")
    assert settings.webhook_allow == ["127.0.0.1", "hooks.internal", "10.0.0.0/8"]
    assert settings.webhook_allow_http
    monkeypatch.setenv("RLDOJO_WEBHOOK_ALLOW", '["::1"]')
    assert Settings(data_dir="/tmp/rldojo-webhook-settings").webhook_allow == ["::1"]
    monkeypatch.setenv("RLDOJO_WEBHOOK_ALLOW", "hooks.internal,not a host")
    with pytest.raises(ValidationError, match="'not a host' is neither a host name"):
        Settings(data_dir="/tmp/rldojo-webhook-settings")
    monkeypatch.delenv("RLDOJO_WEBHOOK_ALLOW")
    monkeypatch.delenv("RLDOJO_WEBHOOK_ALLOW_HTTP")
    default = Settings(data_dir="/tmp/rldojo-webhook-settings")
    assert default.webhook_allow == [] and not default.webhook_allow_http
