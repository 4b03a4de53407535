"""Personal data and secrets in training examples: what is found, masked for the report, and
redacted in a copy.

Kinds: `email`, `phone_number` (Google's `phonenumbers`, numbers grouped as the country writes
them), `payment_card` (13 to 19 digits with a card network's prefix passing Luhn, `python-stdnum`),
`iban` (country length and mod-97 check, `python-stdnum`), `api_key` (OpenAI, AWS access key ids,
GitHub, Slack, Google, Stripe) and `private_key` (PEM private key blocks).

The scan must cost little next to tokenizing, so each raw line first passes a cheap prefilter (an
`@`, a key's literal prefix, `-----`, an IBAN's start, a `+` and a digit, or a run of as many
digits as the shortest number a finding can have: a national phone number of the scanner's
region, 10 digits in the US, or a 13-digit card), only the texts of the lines it flags are
scanned, and the libraries only see the candidates. On realistic chat text (dates, prices,
versions, times) the prefilter flags a few lines in a hundred besides those holding order-like
numbers; the scan then drops numbers with too few digits before any library call. To keep
false positives low: a number without `+` must be grouped (a bare run of digits is an order number
as often as a phone number) and grouped the way its country writes it, so dates, times, version
strings and order numbers are not phone numbers; cards need a network's prefix besides Luhn.

Findings are reported masked (`j***@***.com`, `****1111`, `sk-p…`), never in full.
"""

from __future__ import annotations

import re
import string
from bisect import bisect_right
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Literal

import phonenumbers
from stdnum import iban, luhn

Kind = Literal["email", "phone_number", "payment_card", "iban", "api_key", "private_key"]
DESCRIPTIONS: dict[Kind, str] = {
    "email": "an email address",
    "phone_number": "a phone number",
    "payment_card": "a payment card number",
    "iban": "an IBAN",
    "api_key": "an API key",
    "private_key": "a private key",
}

_EMAIL = re.compile(
    r"(?<![\w.+-])[\w.+-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63})*\.[A-Za-z]{2,24}\b"
)
# Groups of 2 to 6 digits parted by one space, dot or hyphen, after an optional +country code and
# (area code); or 7 to 19 digits in a row.
_NUMBER = re.compile(
    r"(?<![\w+.-])(?:(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,6}(?:[ .-]\d{2,6}){1,5}|\+?\d{7,19})(?![\w]|[.-]\d)"
)
_NON_DIGITS = re.compile(r"\D")
_INTERNATIONAL_SPAN = re.compile(r"\+\d[\d ().-]{5,}\d")
_CARD_DIGITS = 13
_IBAN_START = re.compile(r"[A-Z]{2}\d\d")
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b")
_SEPARATORS = re.compile(r"[ .()/-]")
_KEY_TEXTS = ("sk-", "AKIA", "ASIA", "gh", "xox", "AIza", "_live_", "_test_")
# The prefilter's tests of a raw line that need its letters, in one regex: `@`, `-----`, what every
# API key holds (`sk-`, `KIA` or `SIA`, `AIza`, `xox`, `k_`, `gh?_`, `github_pat_`), and a `+`
# before a digit. Each alternative starts with a literal of a byte that is rare in prose, so the
# regex engine skips from one such byte to the next (a lookbehind then checks what comes before
# it); a JSON-escaped run of digits (`\n` or `\u00a0` before it) is added per scanner, below.
_LITERAL_TESTS = (
    rb"@|-(?:----|(?<=sk-))|I(?:A(?<=[KS]IA)|za(?<=AIza))|xox"
    rb"|_(?:(?<=k_)|(?<=gh[pousr]_)|(?<=github_)pat_)|\+\d"
)
# The same tests for a block of lines joined (`flagged`), split where that is cheaper: the
# alternatives that are plain literals as substrings (`bytes.find`), and the others each as a regex
# run only on a block holding its first byte (`in`, a memchr: `_`, `+` and `\` are rare in prose).
_LITERAL_NEEDLES = (b"@", b"-----", b"sk-", b"KIA", b"SIA", b"AIza", b"xox")
_UNDERSCORE_TEST = re.compile(rb"_(?:(?<=k_)|(?<=gh[pousr]_)|(?<=github_)pat_)")
_PLUS_TEST = re.compile(rb"\+\d")
# In raw bytes, what the shape's `[-.~]` is: neither a letter, a digit, `_`, `+` nor `\`.
_RAW_SEPARATOR = rb"[^A-Za-z0-9_+\\]"
# A line's shape: capitals become A, small letters and `_` a, digits 0; `+`, `.`, `-` and `\` stay;
# every other byte (spaces, parentheses, quotes, commas, UTF-8 bytes) becomes `~`.
_SHAPE = bytes(
    b
    if b in b"+.-\\"
    else ord("A")
    if chr(b) in string.ascii_uppercase
    else ord("a")
    if chr(b) in string.ascii_lowercase + "_"
    else ord("0")
    if chr(b) in string.digits
    else ord("~")
    for b in range(256)
)
_API_KEY = re.compile(
    r"(?<![A-Za-z0-9_-])(?:"
    r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"
    r"|gh[pousr]_[A-Za-z0-9]{36,}"
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[A-Za-z0-9_-]{35}"
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}"
    r")(?![A-Za-z0-9])"
)
_PEM_BEGIN = "-----BEGIN"
_PRIVATE_KEY = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----(?:.*?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|.*)", re.DOTALL
)
# Issuer prefixes of the card networks (Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay).
_CARD_PREFIX = re.compile(r"4|5[1-5]|2[2-7]|3[47]|6(?:011|5|4[4-9]|2)|35|3(?:0[0-5]|[68])")


@dataclass(frozen=True)
class Finding:
    kind: Kind
    start: int
    end: int
    masked: str


def _mask_email(value: str) -> str:
    local, _, domain = value.partition("@")
    return f"{local[0]}***@***.{domain.rsplit('.', 1)[-1]}"


def _mask_digits(value: str, keep: int) -> str:
    digits = re.sub(r"\D", "", value)
    return f"****{digits[-keep:]}"


class PersonalDataScanner:
    """Finds personal data and secrets in text; `phone_region` is where numbers without a `+`
    country code are taken to be from.

    `candidates(raw)` is the prefilter, run on an example's raw JSON line (bytes, where each test
    is one C-speed pass): the characters every kind needs are ASCII, which JSON never escapes, so a
    line it passes over holds nothing to find. `scan` then reads the texts of the lines it flags."""

    def __init__(self, phone_region: str = "US") -> None:
        self.phone_region = phone_region
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(phone_region)
        lengths = metadata.general_desc.possible_length if metadata and metadata.general_desc else ()
        # A national number may carry its trunk prefix (1 in the US, 0 in most of Europe).
        self._national_lengths = frozenset(lengths) | {length + 1 for length in lengths}
        # Without a `+`, a number is a finding only with a national number's or a card's digits.
        self._min_digits = min(self._national_lengths | {_CARD_DIGITS})
        # In a line's shape: a run of that many digits, each after at most two separators (`) ` in
        # "(415) 555-2671"), after a character the exact pattern may start a number after (`~`:
        # not a letter, digit, `_`, `.`, `+` or `-`, so not "ORD-2024-000123"). The pattern's
        # literal prefix `~0` lets the regex engine skip to each candidate.
        repeat = b"{" + str(self._min_digits - 1).encode() + b"}"
        self._digit_run = re.compile(b"~0(?:[-.~]{0,2}+0)" + repeat)
        # A JSON escape stands for such a character too (`\n`, `\u00a0`): that run is found in the
        # raw line, with the literal tests (`_LITERAL_TESTS`), starting at its rare `\`.
        escaped_run = rb"\\[a-z_](?:[A-Za-z0-9_]{4})?\d(?:" + _RAW_SEPARATOR + rb"{0,2}+\d)" + repeat
        self._literal_tests = re.compile(_LITERAL_TESTS + b"|" + escaped_run)
        self._gated_tests = ((b"_", _UNDERSCORE_TEST), (b"+", _PLUS_TEST), (b"\\", re.compile(escaped_run)))
        # The runs of digits and separators the exact pattern then reads (`_number_matches`).
        self._number_span = re.compile(r"\d[\d ().-]{" + str(max(5, self._min_digits - 2)) + r",}\d")

    def candidates(self, raw: bytes) -> bool:
        """Whether `raw` may hold a finding: two passes over the line, one regex over its bytes
        for what needs letters (`_LITERAL_TESTS`, JSON-escaped digit runs), and one translation
        to its shape (capitals become A, digits 0) searched for an IBAN's country and check digits
        and for a long run of digits."""
        if self._literal_tests.search(raw) is not None:
            return True
        shape = raw.translate(_SHAPE)
        return b"AA00" in shape or self._digit_run.search(shape) is not None

    def flagged(self, lines: Sequence[bytes]) -> set[int]:
        """The indexes of the `lines` that `candidates` flags (and at times a neighbour of one),
        found with one pass of each test over the lines joined, which costs less than a pass over
        each line: far fewer calls, and a test's tables stay in the cache for the whole block.
        The literal tests run split (`_LITERAL_NEEDLES` and the gated regexes): a sixth less than
        their single regex, whose search stops at every `-` and `I` of a block.

        A line is flagged when a match overlaps it. So none that `candidates` flags is missed:
        each match within a line is a match within the joined bytes too (the tests' lookbehinds
        are positive, and more bytes before a line only let them match more), and a match that
        the search skips because an earlier one overlaps it lies in a line that this earlier one
        flags. A match across two lines flags both: the scan of their texts then finds nothing."""
        if len(lines) == 1:
            return {0} if self.candidates(lines[0]) else set()
        joined = b"".join(lines)
        ends = list(accumulate(len(line) for line in lines))
        found: set[int] = set()

        def overlapped(start: int, end: int) -> None:
            first = bisect_right(ends, start)
            found.update(range(first, bisect_right(ends, max(start, end - 1)) + 1))

        # `_LITERAL_TESTS`, split (each needle is what an alternative matches or its lookbehind
        # reads, so a needle's span covers the alternative's match: at most a neighbour more).
        for needle in _LITERAL_NEEDLES:
            at = joined.find(needle)
            while at >= 0:
                overlapped(at, at + len(needle))
                at = joined.find(needle, at + 1)
        for first_byte, test in self._gated_tests:
            if first_byte in joined:
                for match in test.finditer(joined):
                    overlapped(match.start(), match.end())
        shape = joined.translate(_SHAPE)
        at = shape.find(b"AA00")
        while at >= 0:
            overlapped(at, at + 4)
            at = shape.find(b"AA00", at + 1)
        for match in self._digit_run.finditer(shape):
            overlapped(match.start(), match.end())
        return found

    def scan(self, text: str) -> list[Finding]:
        found: list[Finding] = []
        if "@" in text:
            found += (
                Finding("email", m.start(), m.end(), _mask_email(m.group())) for m in _EMAIL.finditer(text)
            )
        if any(prefix in text for prefix in _KEY_TEXTS):
            found += (
                Finding("api_key", m.start(), m.end(), f"{m.group()[:4]}…") for m in _API_KEY.finditer(text)
            )
        if _PEM_BEGIN in text:
            found += (
                Finding("private_key", m.start(), m.end(), "-----BEGIN … PRIVATE KEY-----")
                for m in _PRIVATE_KEY.finditer(text)
            )
        found += self._ibans(text)
        found += self._numbers(text)
        return _without_overlaps(found)

    @staticmethod
    def _ibans(text: str) -> list[Finding]:
        found: list[Finding] = []
        if _IBAN_START.search(text) is None:
            return found
        for match in _IBAN.finditer(text):
            value = match.group()
            if iban.is_valid(value):
                found.append(
                    Finding("iban", match.start(), match.end(), f"{value[:2]}**{_mask_digits(value, 4)}")
                )
        return found

    def _numbers(self, text: str) -> list[Finding]:
        found = []
        for match in self._number_matches(text):
            value = match.group()
            if not value.startswith("+") and len(_NON_DIGITS.sub("", value)) < self._min_digits:
                continue  # a date, a version, a short reference: neither a card nor a phone number
            if _is_card(value):
                found.append(Finding("payment_card", match.start(), match.end(), _mask_digits(value, 4)))
            elif self._is_phone(value):
                found.append(Finding("phone_number", match.start(), match.end(), _mask_digits(value, 2)))
        return found

    def _number_matches(self, text: str) -> Iterator[re.Match[str]]:
        # A cheap pattern finds the runs of digits and separators first; the exact one (whose
        # lookbehind makes it slow to slide over a whole text) then reads only those runs.
        # Both patterns start with a digit or a literal, which the regex engine finds fast.
        for span in self._number_span.finditer(text):
            start = span.start()
            if start and text[start - 1] == "+":
                continue  # an international number: read whole below
            if start and text[start - 1] == "(":
                start -= 1  # "(415) 555-2671"
            yield from _NUMBER.finditer(text, start, span.end() + 1)
        if "+" in text:
            for span in _INTERNATIONAL_SPAN.finditer(text):
                yield from _NUMBER.finditer(text, span.start(), span.end() + 1)

    def _is_phone(self, value: str) -> bool:
        international = value.startswith("+")
        national = re.sub(r"^\+\d{1,3} ", "", value) if international else value
        grouped = re.sub(r"^\(\d{1,4}\) ?", "", national)  # "(415) 555-2671": the area code apart
        separators = set(_SEPARATORS.findall(grouped)) - {"(", ")"}
        if len(separators) > 1 or (not international and not separators):
            return False  # "1957 3.14159" is two numbers; a bare run of digits is an order number
        digits = len(re.sub(r"\D", "", national))
        if not international and digits not in self._national_lengths:
            return False
        matches = phonenumbers.PhoneNumberMatcher(
            value, self.phone_region, leniency=phonenumbers.Leniency.STRICT_GROUPING
        )
        return any(match.raw_string == value for match in matches)

    def redact(self, text: str) -> str:
        """`text` with each finding replaced by `[REDACTED:<kind>]`."""
        findings = self.scan(text)
        for finding in reversed(findings):
            text = f"{text[: finding.start]}[REDACTED:{finding.kind}]{text[finding.end :]}"
        return text


def _is_card(value: str) -> bool:
    separators = set(re.sub(r"\d", "", value))
    if not separators <= {" ", "-"} or len(separators) > 1:
        return False
    digits = re.sub(r"\D", "", value)
    return 13 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) is not None and luhn.is_valid(digits)


def _without_overlaps(found: list[Finding]) -> list[Finding]:
    """Findings in text order; of two that overlap (an IBAN's digits read as a phone number), the
    first kept is the one found first (by kind: emails, keys, private keys, IBANs, numbers)."""
    kept: list[Finding] = []
    for finding in found:
        if all(finding.end <= other.start or finding.start >= other.end for other in kept):
            kept.append(finding)
    return sorted(kept, key=lambda finding: finding.start)
