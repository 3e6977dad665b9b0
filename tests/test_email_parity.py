"""The snippet's isEmail is never looser than the collector's check_email.

An address the popup accepts and the collector refuses (422) is a lost lead: the shopper saw the
discount code, and the outbox drops what the collector refuses. So for every address: snippet
accepts => collector accepts. The snippet may be stricter (it refuses scripts other than Latin,
quoted local parts and hand-typed punycode), but it must take ordinary addresses.

snippet/src/util.js is imported as an ES module by Node, once per test, with the addresses on stdin.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import idna
import pytest

from collector.addresses import check_email, needs_smtputf8, normalize_email

ROOT = Path(__file__).resolve().parent.parent
UTIL = ROOT / "snippet" / "src" / "util.js"

pytestmark = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")


def run_node(script: str, stdin: str = "") -> object:
    """Run `script` as an ES module, with isEmail and FS (node:fs) in scope; parse what it prints as JSON."""
    # util.js reads window and document at import: stand-ins are enough for isEmail.
    module = (
        'import * as FS from "node:fs";\n'
        "globalThis.window = globalThis;\n"
        "globalThis.document = {};\n"
        "const { isEmail } = await import(process.argv[1]);\n" + script
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", module, UTIL.as_uri()],
        input=stdin,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return json.loads(out.stdout)


def snippet_accepts(addresses: list[str]) -> list[bool]:
    result = run_node(
        'const list = JSON.parse(FS.readFileSync(0, "utf8"));\nconsole.log(JSON.stringify(list.map((a) => isEmail(a))));',
        json.dumps(addresses),
    )
    assert isinstance(result, list)
    return [bool(x) for x in result]


def collector_accepts(address: str) -> bool:
    try:
        check_email(address)
    except ValueError:
        return False
    return True


def label(n: int, ch: str = "b") -> str:
    return ch * n


def umlaut_label(ascii_len: int) -> str:
    """A label of ü's whose IDNA (punycode) form is `ascii_len` characters long, or close below."""
    u = "ü"
    while len(a_label(u + "ü")) <= ascii_len:
        u += "ü"
    return u


def a_label(u_label: str) -> str:
    return "xn--" + u_label.encode("punycode").decode("ascii")


# A 189-character domain: with a 64-character local part and the @, 254 characters in all.
DOMAIN_189 = f"{label(63, 'a')}.{label(63, 'b')}.{label(57, 'c')}.com"
assert len(DOMAIN_189) == 189
DOMAIN_125 = f"{label(63, 'a')}.{label(57, 'b')}.com"  # with 64 é (128 bytes) and the @: 254 bytes
assert len(DOMAIN_125) == 125
# With a 64-character local part: 242 and 243 UTF-8 bytes as typed, 254 and 255 with the domain in punycode.
IDN_LABEL = "ü" + "a" * 55  # xn--aaaa...-xxx: 63 characters
IDN_254 = f"{IDN_LABEL}.{IDN_LABEL}.{'c' * 57}.com"
IDN_255 = f"{IDN_LABEL}.{IDN_LABEL}.{'c' * 58}.com"
assert len(a_label(IDN_LABEL)) == 63 and len(("a" * 64 + "@" + IDN_255).encode()) == 243
U63 = umlaut_label(63)
U64 = U63 + "ü"  # its punycode is over 63 characters
assert len(a_label(U63)) <= 63 < len(a_label(U64)) and a_label(U63) == idna.alabel(U63).decode()

# (address, collector accepts, snippet accepts). The snippet may only differ by refusing more.
CASES: list[tuple[str, bool, bool]] = [
    # ordinary addresses: both take them
    ("ann@example.com", True, True),
    ("ANN@EXAMPLE.COM", True, True),
    ("a@b.c", True, True),
    ("ann.lee+cart@sub.example.co.uk", True, True),
    ("o'brien@example.ie", True, True),
    ("user%shop@example.com", True, True),
    ("a!#$%&'*+/=?^_`{|}~-@example.com", True, True),
    ("a_b-c@a-b.example", True, True),
    ("ann@123.com", True, True),
    ("ann@x.c0m", True, True),
    # lengths: local part 64 / 65, label 63 / 64 / 70, total 254 / 255
    (f"{label(64, 'a')}@example.com", True, True),
    (f"{label(65, 'a')}@example.com", False, False),
    (f"ann@{label(63)}.com", True, True),
    (f"ann@{label(64)}.com", False, False),
    (f"ann@{label(70)}.com", False, False),  # the lead the old snippet lost
    (f"{label(64, 'a')}@{DOMAIN_189}", True, True),
    (f"{label(64, 'a')}@x{DOMAIN_189}", False, False),
    (f"{'é' * 64}@{DOMAIN_125}", True, True),  # 254 UTF-8 bytes
    (f"{'é' * 64}@x{DOMAIN_125}", False, False),  # 255 bytes (190 characters)
    (f"{label(64, 'a')}@{IDN_254}", True, True),
    (f"{label(64, 'a')}@{IDN_255}", False, False),  # 243 bytes as typed, but 255 in punycode
    # dots, hyphens, structure
    (".ann@example.com", False, False),
    ("ann.@example.com", False, False),
    ("a..b@example.com", False, False),
    ("ann@.example.com", False, False),
    ("ann@example..com", False, False),
    ("ann@example.com.", False, False),  # a trailing dot
    ("ann@-example.com", False, False),
    ("ann@example-.com", False, False),
    ("ann@exa--mple.com", True, True),
    ("ann@ex--ample.com", False, False),  # "--" in the third and fourth place is kept for punycode
    ("ann@ab--cd.com", False, False),
    ("ann@example", False, False),  # a single label
    ("ann@localhost", False, False),
    ("ann@example.123", False, False),  # a numeric TLD
    ("ann@1.2.3.4", False, False),
    ("ann@[192.0.2.1]", False, False),
    ("ann@example.co1", False, False),
    ("@example.com", False, False),
    ("ann@", False, False),
    ("ann", False, False),
    ("ann@@example.com", False, False),
    ("ann@bob@example.com", False, False),
    # quotes, spaces, specials
    ('"ann"@example.com', False, False),
    ('"ann lee"@example.com', False, False),
    ("ann lee@example.com", False, False),
    ("ann@exa mple.com", False, False),
    ("ann\t@example.com", False, False),
    ("ann\u00a0lee@example.com", False, False),  # no-break space
    ("ann\u200b@example.com", False, False),  # zero-width space
    ("a(b)@example.com", False, False),
    ("a<b>@example.com", False, False),
    ("a,b@example.com", False, False),
    ("a;b@example.com", False, False),
    ("a:b@example.com", False, False),
    ("a\\b@example.com", False, False),
    ("a[b]@example.com", False, False),
    ("Ann <ann@example.com>", False, False),
    # special-use domains (RFC 6761 and friends)
    ("ann@shop.test", False, False),
    ("ann@printer.local", False, False),
    ("ann@x.localhost", False, False),
    ("ann@abc.onion", False, False),
    ("ann@x.invalid", False, False),
    ("ann@1.in-addr.arpa", False, False),
    # non-ASCII local parts (they need SMTPUTF8 to be sent)
    ("crème@example.com", True, True),
    ("josé.garcía@example.es", True, True),
    ("ŁUKASZ@example.pl", True, True),
    ("cre\u0300me@example.com", True, False),  # decomposed (NFD): the snippet wants the composed form
    ("иван@example.ru", True, False),  # Cyrillic: the snippet takes Latin letters only
    ("用户@example.cn", True, False),
    ("×@example.com", True, False),  # a symbol, not a letter
    # internationalised domains
    ("ann@bücher.de", True, True),
    ("ann@BÜCHER.DE", True, True),
    ("ann@école.fr", True, True),
    ("ann@\u212aelvin.com", True, False),  # the Kelvin sign: IDNA maps it to k, the snippet keeps to Latin
    (f"ann@{U63}.de", True, True),
    (f"ann@{U64}.de", False, False),
    ("ann@xn--bcher-kva.de", True, False),  # punycode typed by hand: the snippet refuses it
    ("ann@straße.de", True, False),  # ß: IDNA 2003 and 2008 differ, the snippet keeps out of it
    ("ann@ĳssel.nl", True, False),  # ĳ: IDNA maps it to "ij"
    ("ann@пример.рф", True, False),
    ("иван@пример.рф", True, False),
    ("ann@☃.net", False, False),
    ("ann@\u0661\u0662.com", False, False),
    ("ann@x.0x1f", True, False),  # the URL parser reads a hex number as an IPv4 address
]


def test_the_cases_are_what_the_table_says_and_the_snippet_is_never_looser() -> None:
    addresses = [a for a, _, _ in CASES]
    assert len(set(addresses)) == len(addresses)
    js = snippet_accepts(addresses)
    looser = [a for a, j in zip(addresses, js, strict=True) if j and not collector_accepts(a)]
    assert looser == [], "the snippet accepts what the collector refuses"
    wrong = [
        (a, {"collector": collector_accepts(a), "snippet": j})
        for (a, py_expected, js_expected), j in zip(CASES, js, strict=True)
        if (collector_accepts(a), j) != (py_expected, js_expected)
    ]
    assert wrong == []
    # The table can fail: it holds addresses both take, both refuse, and only the collector takes.
    kinds = {(p, j) for _, p, j in CASES}
    assert kinds == {(True, True), (False, False), (True, False)}


# Every BMP character in each place of an address: whatever the snippet takes there, the collector
# takes too, and the snippet's lower-cased domain is the collector's normalised one (the snippet
# measures the normalised address by it). Characters outside the BMP are two UTF-16 units to the
# snippet's regular expressions (no "u" flag), and no class there holds a surrogate.
SCAN = """
const places = [(c) => c + "@example.com", (c) => "a" + c + "b@example.com", (c) => "ann@" + c + ".com",
  (c) => "ann@x" + c + "y.com", (c) => "ann@example.x" + c];
const ok = [];
for (let i = 0; i < 0x10000; i++) {
  if (i >= 0xd800 && i < 0xe000) continue;
  const c = String.fromCharCode(i);
  for (const place of places) {
    const a = place(c);
    if (isEmail(a)) ok.push([a, a.slice(a.lastIndexOf("@") + 1).toLowerCase()]);
  }
}
for (let i = 0x10000; i < 0x110000; i += 101) {
  const c = String.fromCodePoint(i);
  for (const place of places) if (isEmail(place(c))) ok.push([place(c), ""]);
}
console.log(JSON.stringify(ok));
"""


def test_every_character_the_snippet_takes_the_collector_takes() -> None:
    accepted = run_node(SCAN)
    assert isinstance(accepted, list) and len(accepted) > 1000  # ASCII and Latin letters, in five places
    refused = []
    differ = []
    for address, js_domain in accepted:
        try:
            normalized = check_email(address)
        except ValueError as exc:
            refused.append((address, str(exc)))
            continue
        if normalized.rpartition("@")[2] != js_domain:
            differ.append((address, normalized, js_domain))
    assert refused == []
    assert differ == []
    # The Latin letters are in: é, ł, ß (in the local part) and ü (in a domain).
    got = {a for a, _ in accepted}
    assert {"é@example.com", "ł@example.com", "ß@example.com", "ann@ü.com"} <= got


def test_check_email_returns_the_normalised_address() -> None:
    assert check_email("  Ann@Example.COM ") == "Ann@example.com"
    assert check_email("ann@XN--BCHER-KVA.de") == "ann@bücher.de" == check_email("ann@Bücher.de")
    assert check_email("cre\u0300me@example.com") == "crème@example.com"  # NFC
    assert normalize_email(check_email(" Ann@Example.COM ")) == "ann@example.com"
    with pytest.raises(ValueError, match="period"):
        check_email("ann@example")
    with pytest.raises(ValueError, match="special-use"):
        check_email("ann@shop.test")
    assert check_email("shop@shop.test", allow_test_domain=True) == "shop@shop.test"


def test_needs_smtputf8_is_about_the_local_part() -> None:
    assert needs_smtputf8("crème@example.com")
    assert not needs_smtputf8("ann@bücher.de")  # the domain goes as xn--bcher-kva.de
    assert not needs_smtputf8("ann@example.com")
