"""The ``phone`` column of a sample: valid US/CA numbers in many formats, and a table
of damaged values (scientific notation, Caribbean and foreign numbers, too short, too
long, bad area codes, blanks, text) in the shares a real export shows."""

from __future__ import annotations

import polars as pl

from pipeline.sample.draw import NULL, digits, pick, random_frame, stream, strings, tmp, weighted

DAMAGE_POOL = 8_192
"""Distinct damaged phone values."""

# Real area codes; every [2-9]XX exchange except 555 is valid under them (libphonenumber).
US_AREA_CODES = ("212", "213", "305", "312", "415", "617", "646", "702", "713", "917")
CA_AREA_CODES = ("416", "514", "604", "613", "647", "780", "905")
AREA_CODES = US_AREA_CODES + CA_AREA_CODES
EXCHANGES = tuple(str(e) for e in range(200, 1000) if e != 555)
# NPA + exchange prefixes that libphonenumber holds valid for JM, DO, PR, BS, BM, BB, TT.
CARIBBEAN_PREFIXES = (
    "876210",
    "876926",
    "809221",
    "809535",
    "787281",
    "787764",
    "242322",
    "441295",
    "246230",
    "868221",
)
INTERNATIONAL = (
    "+44 20 7946 0958",
    "+44 7700 900123",
    "+61 2 9876 5432",
    "+61 412 345 678",
    "+49 30 12345678",
    "+33 1 23 45 67 89",
    "+52 55 1234 5678",
    "0044 20 7946 0018",
)
PHONE_TEXT = (
    "n/a",
    "N/A",
    "call me",
    "unknown",
    "none",
    "-",
    "TBD",
    "no phone",
    "see notes",
    "NULL",
)

# Phone formats: (prefix, after area code, after exchange, extension marker, tail, per mille).
# A format with a marker gets 1-4 extension digits after it. They sum to 730 per mille; the
# other 270 are damage drawn from the damage table.
FORMATS: tuple[tuple[str, str, str, str, str, int], ...] = (
    ("", "", "", "", "", 150),  # 2123456789
    ("(", ") ", "-", "", "", 110),  # (212) 345-6789
    ("", "-", "-", "", "", 110),  # 212-345-6789
    ("", ".", ".", "", "", 45),  # 212.345.6789
    ("+1 ", " ", " ", "", "", 45),  # +1 212 345 6789
    ("1-", "-", "-", "", "", 35),  # 1-212-345-6789
    ("+1", "", "", "", "", 55),  # +12123456789
    ("tel:+1-", "-", "-", "", "", 15),  # tel:+1-212-345-6789
    ("", " ", " ", "", "", 30),  # 212 345 6789
    ("1", "", "", "", "", 20),  # 12123456789
    ("+1 (", ") ", "-", "", "", 20),  # +1 (212) 345-6789
    ("", "-", "-", " x", "", 15),  # 212-345-6789 x45
    ("", ".", ".", " ext. ", "", 15),  # 212.345.6789 ext. 7
    ("(", ") ", "-", " extension ", "", 8),  # (212) 345-6789 extension 12
    ("", "", "", "#", "", 7),  # 2123456789#9
    ("", " ", " ", " ext ", "", 7),  # 212 345 6789 ext 301
    (" ", "-", "-", "", " ", 8),  # " 212-345-6789 "
    ("  ", "", "", "", "", 5),  # "  2123456789"
    ("", "", "", "", ".0", 22),  # 2123456789.0 (a spreadsheet's float)
    ("1", "", "", "", ".0", 8),  # 12123456789.0
)
# Damage kinds and their per mille of all rows (sum 270).
DAMAGE_KINDS: tuple[tuple[str, int], ...] = (
    ("scientific", 30),  # 2.12346E+09: digits lost
    ("caribbean", 20),  # valid NANP, outside US/CA
    ("international", 20),
    ("too_short", 30),
    ("too_long", 20),
    ("bad_area", 30),  # 123-456-7890, (011) 234-5678
    ("blank", 80),  # null, "" or spaces
    ("text", 40),
)
assert sum(f[5] for f in FORMATS) + sum(w for _, w in DAMAGE_KINDS) == 1000

_SUBSCRIBERS = strings([f"{n:04d}" for n in range(10_000)])
_EXTENSIONS = strings(
    [""]
    + [str(n) for n in range(1, 10)]
    + [str(n) for n in range(10, 100)]
    + [str(n) for n in range(100, 1000, 7)]
    + [str(n) for n in range(1000, 10000, 97)]
)
NO_FORMAT = len(FORMATS)  # format index of a row whose phone comes from the damage table
FORMAT_OF_MILLE = pl.Series(
    [i for i, f in enumerate(FORMATS) for _ in range(f[5])]
    + [NO_FORMAT] * sum(w for _, w in DAMAGE_KINDS),
    dtype=pl.UInt32,
)


def _format_field(field: int) -> pl.Series:
    return strings([str(f[field]) for f in FORMATS] + [""])


_PREFIX, _SEP1, _SEP2, _MARKER, _TAIL = (_format_field(k) for k in range(5))
_HAS_EXTENSION = pl.Series([f[3] != "" for f in FORMATS] + [False])


def formatted(area: pl.Expr, exch: pl.Expr, sub: pl.Expr, fmt: pl.Expr, r_ext: pl.Expr) -> pl.Expr:
    ext = pl.when(pl.lit(_HAS_EXTENSION).gather(fmt)).then(r_ext % (len(_EXTENSIONS) - 1) + 1)
    return pl.concat_str(
        pl.lit(_PREFIX).gather(fmt),
        area,
        pl.lit(_SEP1).gather(fmt),
        exch,
        pl.lit(_SEP2).gather(fmt),
        sub,
        pl.lit(_MARKER).gather(fmt),
        pl.lit(_EXTENSIONS).gather(ext.otherwise(0)),
        pl.lit(_TAIL).gather(fmt),
    )


def phone_parts(key: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """A valid US/CA number's (area code, exchange, subscriber) from the random u64 ``key``."""
    n_area, n_exch = len(AREA_CODES), len(EXCHANGES)
    return (
        pick(AREA_CODES, key),
        pick(EXCHANGES, key // n_area),
        pl.lit(_SUBSCRIBERS).gather(key // (n_area * n_exch) % 10_000),
    )


def damage_table(seed: int) -> pl.Series:
    """Damaged phone values, each kind in proportion to its share of :data:`DAMAGE_KINDS`."""
    df = random_frame(DAMAGE_POOL, seed + 1, 6)
    kinds = [name for name, _ in DAMAGE_KINDS]
    df = df.with_columns(
        _kind=weighted([w for _, w in DAMAGE_KINDS], stream(0)),
        _variant=stream(1) % 4,
        _caribbean=pick(CARIBBEAN_PREFIXES, stream(1) // 4),
    )
    area, exch, sub = phone_parts(stream(2))
    fmt = weighted([f[5] for f in FORMATS[:-2]], stream(3))  # any format but the ".0" ones
    variant, kind = tmp("variant"), tmp("kind")
    is_kind = {name: kind == i for i, name in enumerate(kinds)}
    carib_area = tmp("caribbean").str.slice(0, 3)
    carib_exch = tmp("caribbean").str.slice(3, 3)
    bad_area = pick(("0", "1"), stream(4)) + digits(stream(4) // 2, 2)
    df = df.with_columns(
        _area=pl.when(is_kind["caribbean"])
        .then(carib_area)
        .when(is_kind["bad_area"])
        .then(bad_area)
        .otherwise(area),
        _exch=pl.when(is_kind["caribbean"]).then(carib_exch).otherwise(exch),
        _sub=sub,
    )
    area, exch, sub = tmp("area"), tmp("exch"), tmp("sub")
    digits10 = pl.concat_str(area, exch, sub)
    # Excel shows 2123456789 as 2.12346E+09 and 12123456789 as 1.21235E+10.
    eleven = variant == 0
    n10 = area.cast(pl.Int64) * 10_000_000 + exch.cast(pl.Int64) * 10_000 + sub.cast(pl.Int64)
    mantissa = (
        pl.when(eleven)
        .then((n10 + 10_000_050_000) // 100_000)
        .otherwise((n10 + 5_000) // 10_000)
        .cast(pl.String)
    )
    frac = mantissa.str.slice(1).str.strip_chars_end("0")
    scientific = pl.concat_str(
        mantissa.str.slice(0, 1),
        pl.when(frac != "").then(pl.lit(".") + frac).otherwise(pl.lit("")),
        pl.when(eleven).then(pl.lit("E+10")).otherwise(pl.lit("E+09")),
    )
    too_short = (
        pl.when(variant < 2)
        .then(pl.concat_str(exch, pl.lit("-"), sub))
        .when(variant == 2)
        .then(pl.concat_str(exch, sub))
        .otherwise(
            pl.concat_str(pl.lit("("), area, pl.lit(") "), exch, pl.lit("-"), sub.str.slice(0, 3))
        )
    )
    extra = digits(stream(5), 5).str.slice(0, (stream(5) // 100_000 % 4 + 2).cast(pl.Int64))
    too_long = (
        pl.when(variant == 0)
        .then(pl.concat_str(area, pl.lit("-"), exch, pl.lit("-"), sub, extra))
        .otherwise(pl.concat_str(digits10, extra))
    )
    blank = (
        pl.when(variant < 2).then(NULL).when(variant == 2).then(pl.lit("")).otherwise(pl.lit("   "))
    )
    phone = (
        pl.when(is_kind["scientific"])
        .then(scientific)
        .when(is_kind["caribbean"] | is_kind["bad_area"])
        .then(formatted(area, exch, sub, fmt, stream(5)))
        .when(is_kind["international"])
        .then(pick(INTERNATIONAL, stream(4)))
        .when(is_kind["too_short"])
        .then(too_short)
        .when(is_kind["too_long"])
        .then(too_long)
        .when(is_kind["blank"])
        .then(blank)
        .otherwise(pick(PHONE_TEXT, stream(4)))
    )
    return df.select(phone=phone).to_series()
