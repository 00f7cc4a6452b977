"""Synthetic *messy* leads files for trials, tests and benchmarks (``phone-enrich sample``).

Vectorized and streamed: rows are generated column-wise with polars, in chunks of at most
:data:`CHUNK_ROWS`, and appended to the output, so any number of rows fits in bounded memory.
Randomness comes from hashing the row number with per-stream seeds (``Series.hash``), so a row
does not depend on the chunk it falls in, and the file is a pure function of ``(rows, seed)``
on a given polars version (polars does not promise its hash is stable across versions).

What must be unique per row (``lead_id``, the phone numbers) is built per row. The rest (the
person, damaged phones, consent dates) is drawn from tables built once per call, which keeps
a 3M-row file to a few seconds.

The ``phone`` column: about 70% numbers that should normalize (US/CA, many formats, some with
extensions or surrounding spaces), 3% with a spreadsheet's trailing ``.0`` (restorable), and
27% damage: scientific notation, Caribbean NANP, other countries, too short, too long, invalid
area codes, blanks and text. About 20% of rows reuse one of :data:`DUPLICATE_POOL` numbers,
usually in another format. Rows with a damaged phone carry name+company or an email less
often, so that about 10% of all rows are candidates for a phone-append lookup.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

CHUNK_ROWS = 250_000
"""Rows generated and written at a time (bounds memory for any ``rows``)."""

COLUMNS = (
    "lead_id",
    "first_name",
    "last_name",
    "company",
    "domain",
    "email",
    "linkedin",
    "address",
    "zip",
    "ip",
    "phone",
    "consent_date",
    "notes",
)

DUPLICATE_POOL = 3_000
"""Size of the pool of numbers that about 20% of rows reuse."""
DUPLICATE_PER_MILLE = 200
PEOPLE_POOL = 65_536
"""People per table (one table for rows with a usable phone, one for the rest)."""
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

FIRST_NAMES = (
    ("James", "james"),
    ("Mary", "mary"),
    ("John", "john"),
    ("Patricia", "patricia"),
    ("Robert", "robert"),
    ("Jennifer", "jennifer"),
    ("Michael", "michael"),
    ("Linda", "linda"),
    ("David", "david"),
    ("Elizabeth", "elizabeth"),
    ("William", "william"),
    ("Barbara", "barbara"),
    ("Richard", "richard"),
    ("Susan", "susan"),
    ("Joseph", "joseph"),
    ("Jessica", "jessica"),
    ("Thomas", "thomas"),
    ("Sarah", "sarah"),
    ("Carlos", "carlos"),
    ("Karen", "karen"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Seán", "sean"),
    ("Chloé", "chloe"),
    ("Wei", "wei"),
    ("Priya", "priya"),
    ("Mohammed", "mohammed"),
    ("Aaliyah", "aaliyah"),
    ("Mary-Kate", "marykate"),
    ("Jean-Luc", "jeanluc"),
    ("Ngozi", "ngozi"),
    ("Hiroshi", "hiroshi"),
)
LAST_NAMES = (
    ("Smith", "smith"),
    ("Johnson", "johnson"),
    ("Williams", "williams"),
    ("Brown", "brown"),
    ("Jones", "jones"),
    ("Garcia", "garcia"),
    ("Miller", "miller"),
    ("Davis", "davis"),
    ("Rodriguez", "rodriguez"),
    ("Martinez", "martinez"),
    ("Nguyen", "nguyen"),
    ("Tremblay", "tremblay"),
    ("Gagnon", "gagnon"),
    ("Roy", "roy"),
    ("Wilson", "wilson"),
    ("Anderson", "anderson"),
    ("O'Brien", "obrien"),
    ("Müller", "muller"),
    ("García", "garcia"),
    ("Smith-Jones", "smithjones"),
    ("de la Cruz", "delacruz"),
    ("Côté", "cote"),
    ("Kim", "kim"),
    ("Patel", "patel"),
    ("Okafor", "okafor"),
    ("Lee", "lee"),
    ("Chen", "chen"),
    ("MacDonald", "macdonald"),
)
COMPANIES = (
    ("Acme, Inc.", "acme.com"),
    ("Globex Corporation", "globex.com"),
    ("Initech", "initech.com"),
    ("Umbrella Corp", "umbrella-corp.com"),
    ("Stark Industries", "starkindustries.com"),
    ("Wayne Enterprises", "wayne.com"),
    ("Hooli", "hooli.xyz"),
    ("Pied Piper", "piedpiper.com"),
    ("Tyrell Corp.", "tyrell.com"),
    ("Cyberdyne Systems", "cyberdyne.io"),
    ("Vandelay Industries", "vandelay.com"),
    ("Dunder Mifflin", "dundermifflin.com"),
    ("Wonka Industries", "wonka.co"),
    ("Bluth Company", "bluth.com"),
    ("Maple Leaf Foods", "mapleleaf.ca"),
    ("Aperture Science", "aperturescience.com"),
    ("Massive Dynamic", "massivedynamic.com"),
    ("Los Pollos Hermanos", "lospolloshermanos.com"),
    ("Sterling Cooper", "sterlingcooper.com"),
    ("Monsters, Inc.", "monstersinc.com"),
    ('The "Best" Bakery', "bestbakery.ca"),
    ("Soylent Corp", "soylent.com"),
    ("Gekko & Co", "gekko.co"),
    ("Bell Canada", "bell.ca"),
)
WEBMAIL = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "shaw.ca")
STREETS = (
    "Main",
    "Oak",
    "Maple",
    "Cedar",
    "Elm",
    "Washington",
    "Lake",
    "Hill",
    "Park",
    "Queen",
    "King",
    "Yonge",
    "Sunset",
    "Broadway",
)
STREET_TYPES = ("St", "Ave", "Blvd", "Rd", "Dr", "Ln", "Way", "St.", "Street")
CA_POSTAL_CODES = ("M5V 2T6", "H3B 4W8", "V6B 1A1", "K1P 5J2", "T5J 0N3", "L6G 1A1")
CONSENT_GARBAGE = ("yesterday", "13/45/2021", "2021-02-30", "N/A", "00/00/0000", "last week")
NOTES = (
    "VIP, call after 5pm",
    'Said "not interested" last time',
    "Left voicemail\nCall back Tuesday",
    '=HYPERLINK("http://x","y")',
    "prefers email, not phone",
    "+1 met at trade show",
    "@sales follow up",
    "-- do not call --",
    'Multi-line,\nwith "quotes", and commas',
    "=1+2",
    "Referred by Jane",
)

CONSENT_FORMATS = (("%m/%d/%Y", 40), ("%Y-%m-%d", 25), ("%m/%d/%y", 15), ("%Y%m%d", 14))
_DATE_2015_01_01 = 16_436  # days since 1970-01-01
_DATE_SPAN_DAYS = 4_018  # 2015-01-01 ..= 2025-12-31

_NULL = pl.lit(None, dtype=pl.String)


def write_sample(path: Path, rows: int, seed: int = 7) -> int:
    """Write ``rows`` synthetic leads to ``path`` (``.csv`` or ``.parquet``); return ``rows``.

    Streams chunks of at most :data:`CHUNK_ROWS` rows into a temp file next to ``path`` and
    renames it into place, so memory stays bounded and no reader sees a partial file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".parquet"):
        raise ValueError(f"sample output must end in .csv or .parquet, got {path.name!r}")
    if rows < 0:
        raise ValueError(f"rows must be >= 0, got {rows}")
    path.parent.mkdir(parents=True, exist_ok=True)
    tables = _Tables.build(seed)
    width = max(7, len(str(rows)))
    bounds = [(s, min(s + CHUNK_ROWS, rows)) for s in range(0, rows, CHUNK_ROWS)] or [(0, 0)]
    chunks = (_chunk(start, end, width, tables) for start, end in bounds)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        if suffix == ".csv":
            with open(tmp, "wb") as fh:
                _pipelined(chunks, lambda df, first: df.write_csv(fh, include_header=first))
        else:
            import pyarrow.parquet as pq

            writers: list[Any] = []

            def write_parquet(df: pl.DataFrame, first: bool) -> None:
                table = df.to_arrow()
                if first:
                    writers.append(pq.ParquetWriter(tmp, table.schema, compression="zstd"))
                writers[0].write_table(table)

            try:
                _pipelined(chunks, write_parquet)
            finally:
                for writer in writers:
                    writer.close()
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return rows


def _pipelined(chunks: Iterator[pl.DataFrame], write: Callable[[pl.DataFrame, bool], None]) -> None:
    """``write(chunk, first)`` each chunk in order, in a thread, while the next is generated.

    Both sides run mostly in polars, outside the GIL; at most two chunks are alive at a time.
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        pending: Future[None] | None = None
        for n, chunk in enumerate(chunks):
            if pending is not None:
                pending.result()
            pending = pool.submit(write, chunk, n == 0)
        if pending is not None:
            pending.result()


# -- helpers -----------------------------------------------------------------------------------


def _strings(values: Sequence[str | None]) -> pl.Series:
    return pl.Series(list(values), dtype=pl.String)


def _pick(values: Sequence[str], r: pl.Expr) -> pl.Expr:
    """One of ``values``, chosen by the random u64 ``r``."""
    return pl.lit(_strings(values)).gather(r % len(values))


def _weighted(weights: Sequence[int], r: pl.Expr) -> pl.Expr:
    """An index into ``weights`` (u32), drawn with those weights by the random u64 ``r``."""
    table = pl.Series([i for i, w in enumerate(weights) for _ in range(w)], dtype=pl.UInt32)
    return pl.lit(table).gather(r % len(table))


def _digits(r: pl.Expr, n: int) -> pl.Expr:
    """``n`` zero-padded pseudo-random digits from ``r``."""
    modulus: int = 10**n
    return (r % modulus).cast(pl.String).str.zfill(n)


def _random_frame(n: int, seed: int, streams: int, offset: int = 0) -> pl.DataFrame:
    """``_i`` (row numbers ``offset..offset+n``) and ``_r0..`` (independent random u64s)."""
    idx = pl.int_range(offset, offset + n, dtype=pl.UInt64, eager=True)
    base = (seed % 2**40) * 64
    return pl.DataFrame({"_i": idx} | {f"_r{s}": idx.hash(seed=base + s) for s in range(streams)})


def _r(stream: int) -> pl.Expr:
    return pl.col(f"_r{stream}")


def _c(name: str) -> pl.Expr:
    return pl.col(f"_{name}")


# -- lookup tables ----------------------------------------------------------------------------

_SUBSCRIBERS = _strings([f"{n:04d}" for n in range(10_000)])
_EXTENSIONS = _strings(
    [""]
    + [str(n) for n in range(1, 10)]
    + [str(n) for n in range(10, 100)]
    + [str(n) for n in range(100, 1000, 7)]
    + [str(n) for n in range(1000, 10000, 97)]
)
_NO_FORMAT = len(FORMATS)  # format index of a row whose phone comes from the damage table
_FORMAT_OF_MILLE = pl.Series(
    [i for i, f in enumerate(FORMATS) for _ in range(f[5])]
    + [_NO_FORMAT] * sum(w for _, w in DAMAGE_KINDS),
    dtype=pl.UInt32,
)


def _format_field(field: int) -> pl.Series:
    return _strings([str(f[field]) for f in FORMATS] + [""])


_PREFIX, _SEP1, _SEP2, _MARKER, _TAIL = (_format_field(k) for k in range(5))
_HAS_EXTENSION = pl.Series([f[3] != "" for f in FORMATS] + [False])


@dataclass(frozen=True)
class _Tables:
    seed: int
    people: pl.DataFrame  # PEOPLE_POOL rows for usable phones, then PEOPLE_POOL for the rest
    damage: pl.Series  # DAMAGE_POOL damaged phone values
    dates: pl.Series  # every day in each consent-date format

    @classmethod
    def build(cls, seed: int) -> _Tables:
        return cls(seed, _people_table(seed), _damage_table(seed), _date_table())


def _date_table() -> pl.Series:
    days = pl.int_range(
        _DATE_2015_01_01, _DATE_2015_01_01 + _DATE_SPAN_DAYS, dtype=pl.Int32, eager=True
    ).cast(pl.Date)
    return pl.concat([days.dt.strftime(fmt) for fmt, _ in CONSENT_FORMATS])


def _formatted(area: pl.Expr, exch: pl.Expr, sub: pl.Expr, fmt: pl.Expr, r_ext: pl.Expr) -> pl.Expr:
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


def _number(key: pl.Expr) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """A valid US/CA number's (area code, exchange, subscriber) from the random u64 ``key``."""
    n_area, n_exch = len(AREA_CODES), len(EXCHANGES)
    return (
        _pick(AREA_CODES, key),
        _pick(EXCHANGES, key // n_area),
        pl.lit(_SUBSCRIBERS).gather(key // (n_area * n_exch) % 10_000),
    )


def _damage_table(seed: int) -> pl.Series:
    """Damaged phone values, each kind in proportion to its share of :data:`DAMAGE_KINDS`."""
    df = _random_frame(DAMAGE_POOL, seed + 1, 6)
    kinds = [name for name, _ in DAMAGE_KINDS]
    df = df.with_columns(
        _kind=_weighted([w for _, w in DAMAGE_KINDS], _r(0)),
        _variant=_r(1) % 4,
        _caribbean=_pick(CARIBBEAN_PREFIXES, _r(1) // 4),
    )
    area, exch, sub = _number(_r(2))
    fmt = _weighted([f[5] for f in FORMATS[:-2]], _r(3))  # any format but the ".0" ones
    variant, kind = _c("variant"), _c("kind")
    is_kind = {name: kind == i for i, name in enumerate(kinds)}
    carib_area = _c("caribbean").str.slice(0, 3)
    carib_exch = _c("caribbean").str.slice(3, 3)
    bad_area = _pick(("0", "1"), _r(4)) + _digits(_r(4) // 2, 2)
    df = df.with_columns(
        _area=pl.when(is_kind["caribbean"])
        .then(carib_area)
        .when(is_kind["bad_area"])
        .then(bad_area)
        .otherwise(area),
        _exch=pl.when(is_kind["caribbean"]).then(carib_exch).otherwise(exch),
        _sub=sub,
    )
    area, exch, sub = _c("area"), _c("exch"), _c("sub")
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
    extra = _digits(_r(5), 5).str.slice(0, (_r(5) // 100_000 % 4 + 2).cast(pl.Int64))
    too_long = (
        pl.when(variant == 0)
        .then(pl.concat_str(area, pl.lit("-"), exch, pl.lit("-"), sub, extra))
        .otherwise(pl.concat_str(digits10, extra))
    )
    blank = (
        pl.when(variant < 2)
        .then(_NULL)
        .when(variant == 2)
        .then(pl.lit(""))
        .otherwise(pl.lit("   "))
    )
    phone = (
        pl.when(is_kind["scientific"])
        .then(scientific)
        .when(is_kind["caribbean"] | is_kind["bad_area"])
        .then(_formatted(area, exch, sub, fmt, _r(5)))
        .when(is_kind["international"])
        .then(_pick(INTERNATIONAL, _r(4)))
        .when(is_kind["too_short"])
        .then(too_short)
        .when(is_kind["too_long"])
        .then(too_long)
        .when(is_kind["blank"])
        .then(blank)
        .otherwise(_pick(PHONE_TEXT, _r(4)))
    )
    return df.select(phone=phone).to_series()


def _people_table(seed: int) -> pl.DataFrame:
    """People: the first :data:`PEOPLE_POOL` for rows with a usable phone, then the rest.

    Identity profiles: 0 full, 1 name+company, 2 name+email, 3 name only, 4 none. People for
    rows with a damaged phone have fewer identities, so that about 10% of all rows are a bad
    phone with name+company or an email (what a phone-append lookup needs).
    """
    df = _random_frame(2 * PEOPLE_POOL, seed + 2, 9)
    first_i, last_i, co_i = (
        _r(0) % len(FIRST_NAMES),
        _r(1) % len(LAST_NAMES),
        _r(2) % len(COMPANIES),
    )
    p = _r(3) % 100
    profile = (
        pl.when(_c("i") < PEOPLE_POOL)
        .then(
            pl.when(p < 55)
            .then(0)
            .when(p < 75)
            .then(1)
            .when(p < 85)
            .then(2)
            .when(p < 95)
            .then(3)
            .otherwise(4)
        )
        .otherwise(
            pl.when(p < 15)
            .then(0)
            .when(p < 27)
            .then(1)
            .when(p < 37)
            .then(2)
            .when(p < 75)
            .then(3)
            .otherwise(4)
        )
    )
    df = df.with_columns(
        _profile=profile,
        _first=pl.lit(_strings([n for n, _ in FIRST_NAMES])).gather(first_i),
        _last=pl.lit(_strings([n for n, _ in LAST_NAMES])).gather(last_i),
        _first_a=pl.lit(_strings([a for _, a in FIRST_NAMES])).gather(first_i),
        _last_a=pl.lit(_strings([a for _, a in LAST_NAMES])).gather(last_i),
        _company=pl.lit(_strings([c for c, _ in COMPANIES])).gather(co_i),
        _company_domain=pl.lit(_strings([d for _, d in COMPANIES])).gather(co_i),
    )
    first_a, last_a = _c("first_a"), _c("last_a")
    r_mail = _r(4)
    mail_style = r_mail % 10
    local = (
        pl.when(mail_style < 4)
        .then(pl.concat_str(first_a, pl.lit("."), last_a))
        .when(mail_style < 6)
        .then(pl.concat_str(first_a.str.slice(0, 1), last_a))
        .when(mail_style < 8)
        .then(pl.concat_str(first_a, last_a, _digits(r_mail // 100, 2)))
        .otherwise(pl.concat_str(first_a, pl.lit("_"), last_a))
    )
    profile_ = _c("profile")
    has_name, has_company = profile_ <= 3, profile_ <= 1
    has_email = (profile_ == 0) | (profile_ == 2)
    email = pl.concat_str(
        local,
        pl.lit("@"),
        pl.when(has_company & (mail_style < 6))
        .then(_c("company_domain"))
        .otherwise(_pick(WEBMAIL, r_mail // 10)),
    )
    mess = r_mail // 1000 % 100
    messy_email = (
        pl.when(mess < 3)
        .then(pl.concat_str(pl.lit(" "), email.str.to_uppercase(), pl.lit(" ")))
        .when(mess < 4)
        .then(pl.concat_str(local, pl.lit("@")))
        .otherwise(email)
    )
    r_li = _r(5)
    hex4 = pl.concat_str([_pick("0123456789abcdef", r_li // 16**k) for k in range(4)])
    slug = pl.concat_str(first_a, last_a, hex4, separator="-")
    linkedin = (
        pl.when(r_li // 65_536 % 10 < 7)
        .then(slug)
        .otherwise(pl.concat_str(pl.lit("https://www.linkedin.com/in/"), slug))
    )
    r_addr = _r(6)
    street = pl.concat_str(
        (r_addr // 100 % 9_899 + 1).cast(pl.String),
        _pick(STREETS, r_addr // 1_000_000),
        _pick(STREET_TYPES, r_addr // 100_000_000),
        separator=" ",
    )
    unit = r_addr // 10**10
    address = (
        pl.when(r_addr % 100 < 8)
        .then(pl.concat_str(street, pl.lit(", Suite "), (unit % 900 + 100).cast(pl.String)))
        .when(r_addr % 100 < 15)
        .then(pl.concat_str(street, pl.lit(" Apt "), (unit % 40 + 1).cast(pl.String)))
        .otherwise(street)
    )
    r_zip = _r(7)
    zip_code = (
        pl.when(r_zip % 100 < 10)
        .then(pl.concat_str(_digits(r_zip // 100, 5), pl.lit("-"), _digits(r_zip // 10**7, 4)))
        .when(r_zip % 100 < 16)
        .then(_pick(CA_POSTAL_CODES, r_zip // 100))
        .otherwise(_digits(r_zip // 100, 5))
    )
    r_ip = _r(8)
    ip = pl.concat_str(
        (r_ip % 223 + 1).cast(pl.String),
        (r_ip // 2**8 % 256).cast(pl.String),
        (r_ip // 2**16 % 256).cast(pl.String),
        (r_ip // 2**24 % 254 + 1).cast(pl.String),
        separator=".",
    )
    r_misc = _r(3) // 100
    return df.select(
        first_name=pl.when(has_name & (r_misc % 100 >= 3)).then(_c("first")).otherwise(_NULL),
        last_name=pl.when(has_name & (r_misc // 100 % 100 >= 3)).then(_c("last")).otherwise(_NULL),
        company=pl.when(has_company).then(_c("company")).otherwise(_NULL),
        domain=pl.when(has_company & (r_misc // 10**4 % 10 < 8))
        .then(_c("company_domain"))
        .otherwise(_NULL),
        email=pl.when(has_email).then(messy_email).otherwise(_NULL),
        linkedin=pl.when((profile_ <= 2) & (r_misc // 10**5 % 10 < 3))
        .then(linkedin)
        .otherwise(_NULL),
        address=pl.when(r_misc // 10**6 % 100 < 80).then(address).otherwise(_NULL),
        zip=pl.when(r_misc // 10**8 % 100 < 75).then(zip_code).otherwise(_NULL),
        ip=pl.when(r_misc // 10**10 % 100 < 70).then(ip).otherwise(_NULL),
    )


# -- per chunk ---------------------------------------------------------------------------------


def _chunk(start: int, end: int, width: int, tables: _Tables) -> pl.DataFrame:
    """Rows ``start..end`` (0-based) of the sample."""
    df = _random_frame(end - start, tables.seed, 5, offset=start)
    r_phone, r_number, r_pick, r_consent, r_notes = (_r(s) for s in range(5))
    # A pool number's digits come from its pool index, so it repeats across rows and chunks.
    pooled = (r_pick % DUPLICATE_POOL).hash(seed=(tables.seed % 2**40) * 64 + 63)
    df = df.with_columns(
        _fmt=pl.lit(_FORMAT_OF_MILLE).gather(r_phone % 1000),
        _key=pl.when(r_phone // 1000 % 1000 < DUPLICATE_PER_MILLE).then(pooled).otherwise(r_number),
    )
    fmt = _c("fmt")
    damaged = fmt == _NO_FORMAT
    area, exch, sub = _number(_c("key"))
    phone = (
        pl.when(damaged)
        .then(pl.lit(tables.damage).gather(r_pick // 2**32 % DAMAGE_POOL))
        .otherwise(_formatted(area, exch, sub, fmt, r_phone // 10**6))
    )
    consent_class = r_consent % 100
    day = r_consent // 100 % _DATE_SPAN_DAYS
    date_format = _weighted([w for _, w in CONSENT_FORMATS], r_consent // 10**6)
    consent_date = (
        pl.when(consent_class < 5)
        .then(_NULL)
        .when(consent_class < 6)
        .then(_pick(CONSENT_GARBAGE, r_consent // 100))
        .otherwise(pl.lit(tables.dates).gather(date_format * _DATE_SPAN_DAYS + day))
    )
    person = r_pick // 4096 % PEOPLE_POOL + pl.when(damaged).then(PEOPLE_POOL).otherwise(0)
    df = df.select(
        lead_id=pl.concat_str(pl.lit("L"), (_c("i") + 1).cast(pl.String).str.zfill(width)),
        phone=phone,
        consent_date=consent_date,
        notes=pl.when(r_notes % 100 < 12).then(_pick(NOTES, r_notes // 100)).otherwise(_NULL),
        _person=person,
    )
    people = tables.people.select(pl.all().gather(df.get_column("_person")))
    return pl.concat([df, people], how="horizontal").select(COLUMNS)
