"""`medledger jcs` against the `rfc8785` package (the RFC 8785 oracle).

Each test feeds one batch through `medledger jcs --lines` (one JSON document per
line in, one canonical line or `error: ...` out) and compares byte for byte.
"""

from __future__ import annotations

import json
import math
import struct

import rfc8785
from e2e_support import run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MAX_SAFE = 2**53 - 1


def jcs_lines(medledger, docs: list[bytes]) -> list[bytes]:
    """Run one batch; returns one output line per input line."""
    for d in docs:
        assert b"\n" not in d and b"\r" not in d, d
    p = run_cli(medledger, "jcs", "--lines", input=b"".join(d + b"\n" for d in docs), timeout=300)
    out = p.stdout
    assert out.endswith(b"\n") or not docs, (p.returncode, out[-200:], p.stderr[-2000:])
    lines = out.split(b"\n")[:-1]
    assert len(lines) == len(docs), f"{len(docs)} lines in, {len(lines)} out; stderr: {p.stderr[-2000:]!r}"
    # The exit status may report failed lines, but a clean batch must exit 0.
    if p.returncode != 0:
        assert any(line.startswith(b"error: ") for line in lines), f"exit {p.returncode}: {p.stderr[-2000:]!r}"
    return lines


def oracle(doc: bytes) -> bytes | None:
    """rfc8785's canonical form of the JSON text, or None when it must be rejected."""
    try:
        value = json.loads(doc.decode("utf-8"))
    except ValueError:
        return None
    try:
        return rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, ValueError):
        return None


def compare_batch(medledger, docs: list[bytes]) -> None:
    got = jcs_lines(medledger, docs)
    mismatches = []
    for doc, out in zip(docs, got):
        want = oracle(doc)
        if want is None:
            if not out.startswith(b"error: "):
                mismatches.append((doc, out, b"error: ..."))
        elif out != want:
            mismatches.append((doc, out, want))
    mismatches.sort(key=lambda m: len(m[0]))
    assert not mismatches, f"{len(mismatches)}/{len(docs)} differ; smallest:\n" + "\n".join(
        f"in:   {d[:300]!r}\ngot:  {g[:300]!r}\nwant: {w[:300]!r}" for d, g, w in mismatches[:5]
    )


# --------------------------------------------------------------------------- RFC 8785's own examples

RFC_SAMPLE_IN = r"""{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}"""
RFC_SAMPLE_OUT = (
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
    '"string":"\u20ac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
).encode()

RFC_SORT_IN = r"""{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}"""
RFC_SORT_OUT = (
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis",'
    '"\u20ac":"Euro Sign","\U0001f600":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}'
).encode()

# RFC 8785 appendix B: IEEE 754 bit patterns and their canonical text.
RFC_NUMBERS = [
    ("0000000000000000", "0"),
    ("8000000000000000", "0"),
    ("0000000000000001", "5e-324"),
    ("8000000000000001", "-5e-324"),
    ("7fefffffffffffff", "1.7976931348623157e+308"),
    ("ffefffffffffffff", "-1.7976931348623157e+308"),
    ("4340000000000000", "9007199254740992"),
    ("c340000000000000", "-9007199254740992"),
    ("4430000000000000", "295147905179352830000"),
    ("44b52d02c7e14af5", "9.999999999999997e+22"),
    ("44b52d02c7e14af6", "1e+23"),
    ("44b52d02c7e14af7", "1.0000000000000001e+23"),
    ("444b1ae4d6e2ef4e", "999999999999999700000"),
    ("444b1ae4d6e2ef4f", "999999999999999900000"),
    ("444b1ae4d6e2ef50", "1e+21"),
    ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
    ("3eb0c6f7a0b5ed8d", "0.000001"),
    ("41b3de4355555553", "333333333.3333332"),
    ("41b3de4355555554", "333333333.33333325"),
    ("41b3de4355555555", "333333333.3333333"),
    ("41b3de4355555556", "333333333.3333334"),
    ("41b3de4355555557", "333333333.33333343"),
    ("becbf647612f3696", "-0.0000033333333333333333"),
    ("43143ff3c1cb0959", "1424953923781206.2"),
]

# Number spellings from RFC 8785 section 3.2.2 and around, as JSON text.
NUMBER_TEXTS = [
    "333333333.33333329", "1E30", "4.50", "2e-3", "0.000001", "1e-7", "-0.0", "-0", "0.0", "1e21", "1e20",
    "1E+2", "1e-06", "0.1", "100", "1.0", "-1.5e300", "2.2250738585072014e-308", "4.9e-324", "123456789012345",
    "9007199254740991", "-9007199254740991", "0.00001", "0.0000001", "12e-1", "1000000000000000000000.0",
    "100000000000000000000.0", "0.000000000000000000000000001", "1.5e-400", "0e100",
]  # fmt: skip


def test_rfc8785_sample_and_sorting_examples(medledger):
    # The RFC's own spellings (1E30, 4.50, \u escapes), with the layout newlines folded.
    docs = [RFC_SAMPLE_IN.replace("\n", " ").encode(), RFC_SORT_IN.replace("\n", " ").encode()]
    out = jcs_lines(medledger, docs)
    assert out == [RFC_SAMPLE_OUT, RFC_SORT_OUT]
    assert rfc8785.dumps(json.loads(RFC_SAMPLE_IN)) == RFC_SAMPLE_OUT  # the oracle agrees with the RFC
    assert rfc8785.dumps(json.loads(RFC_SORT_IN)) == RFC_SORT_OUT


def test_jcs_without_lines_reads_one_multiline_document(medledger):
    for text, want in ((RFC_SAMPLE_IN, RFC_SAMPLE_OUT), (RFC_SORT_IN, RFC_SORT_OUT)):
        p = run_cli(medledger, "jcs", input=text.encode())
        assert p.returncode == 0, p.stderr.decode()
        out = p.stdout[:-1] if p.stdout.endswith(b"\n") else p.stdout
        assert out == want


def test_rfc8785_appendix_b_numbers(medledger):
    values = [struct.unpack(">d", bytes.fromhex(h))[0] for h, _ in RFC_NUMBERS]
    docs = [("[" + repr(v) + "]").encode() for v in values]
    out = jcs_lines(medledger, docs)
    want = [("[" + t + "]").encode() for _, t in RFC_NUMBERS]
    assert [rfc8785.dumps([v]) for v in values] == want  # the oracle agrees with the RFC
    assert out == want


def test_number_spellings(medledger):
    docs = [f"[{t}]".encode() for t in NUMBER_TEXTS] + [f'{{"n":{t}}}'.encode() for t in NUMBER_TEXTS]
    compare_batch(medledger, docs)


def test_values_jcs_cannot_represent_are_rejected_by_both(medledger):
    docs = [b"[1e400]", b"[-1e400]", b'{"a":1E400}', b"[NaN]", b"[Infinity]", b"[-Infinity]", b'{"a":[1,2,1e999]}']
    for d in docs:
        assert oracle(d) is None, d
    out = jcs_lines(medledger, docs)
    assert all(o.startswith(b"error: ") for o in out), out
    # Errors are per line: valid neighbours still come out.
    out = jcs_lines(medledger, [b"[1]", b"[1e400]", b'{"b":2,"a":1}'])
    assert out[0] == b"[1]" and out[1].startswith(b"error: ") and out[2] == b'{"a":1,"b":2}'


def test_invalid_json_lines_are_errors(medledger):
    docs = [
        b"{",
        b'{"a":}',
        b"[1,]",
        b"'x'",
        b'{"a":1}}',
        b"[01]",
        b"[1.]",
        b"[.5]",
        b"[+1]",
        b'"\\x"',
        b'["\\ud800"]',
        b"\xff",
    ]
    out = jcs_lines(medledger, docs)
    assert all(o.startswith(b"error: ") for o in out), list(zip(docs, out))


# --------------------------------------------------------------------------- property-based batches

SETTINGS = settings(max_examples=300, deadline=None, database=None, suppress_health_check=list(HealthCheck))

text_chars = st.characters(blacklist_categories=("Cs",))  # no lone surrogates: not encodable as UTF-8
json_strings = st.text(text_chars, max_size=20) | st.sampled_from(
    [
        "",
        "\u0000",
        "\u001f",
        "\u007f",
        "\u0080",
        "\u2028",
        "\u2029",
        "\ufeff",
        "\U0001f600",
        "\U0010ffff",
        '"\\/',
        "\t\n\r\b\f",
    ]
)
edge_floats = st.sampled_from(
    [0.0, -0.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308, 1e21, 1e-7, 1e-6, 0.1,
     9007199254740992.0, 1e22, 1e23, 123e-20, 4.35, 0.000001, 333333333.33333329]
)  # fmt: skip
json_floats = (
    st.floats(allow_nan=False, allow_infinity=False)
    | edge_floats
    | st.builds(lambda m, e: float(f"{m}e{e}"), st.integers(-(10**17), 10**17), st.integers(-330, 310)).filter(
        math.isfinite
    )
)
json_scalars = st.none() | st.booleans() | st.integers(-MAX_SAFE, MAX_SAFE) | json_floats | json_strings
json_values = st.recursive(
    json_scalars,
    lambda kids: st.lists(kids, max_size=6) | st.dictionaries(json_strings, kids, max_size=6),
    max_leaves=25,
)


def collect(strategy, n: int = 300) -> list:
    """Draw up to n examples in one go (one CLI batch instead of n processes)."""
    examples: list = []

    @SETTINGS
    @given(strategy)
    def draw(v):
        examples.append(v)

    draw()
    assert len(examples) >= n // 2, len(examples)
    return examples


def test_hypothesis_values_escaped_input(medledger):
    values = collect(json_values)
    compare_batch(medledger, [json.dumps(v, ensure_ascii=True).encode() for v in values])


def test_hypothesis_values_raw_utf8_input(medledger):
    values = collect(json_values)
    # ensure_ascii=False leaves U+2028, U+0085 etc. raw: they are not line breaks here.
    docs = [json.dumps(v, ensure_ascii=False, indent=None, separators=(" , ", " :  ")).encode() for v in values]
    compare_batch(medledger, docs)


number_texts = st.builds(
    lambda sign, intpart, frac, exp: f"{sign}{intpart}{frac}{exp}",
    st.sampled_from(["", "-"]),
    st.sampled_from(["0"]) | st.from_regex(r"[1-9][0-9]{0,14}", fullmatch=True),
    st.sampled_from([""]) | st.from_regex(r"\.[0-9]{1,20}", fullmatch=True),
    st.sampled_from([""]) | st.from_regex(r"[eE][+-]?[0-9]{1,3}", fullmatch=True),
)


def test_hypothesis_number_spellings(medledger):
    texts = collect(number_texts)
    # Large exponents overflow doubles: both sides must then reject.
    compare_batch(medledger, [f"[{t}]".encode() for t in texts])
