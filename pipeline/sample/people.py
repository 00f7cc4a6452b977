"""The person columns of a sample (names, company, domain, email, LinkedIn, address,
zip, IP): two tables of people, one for rows with a usable phone and one, with fewer
identities, for the rest."""

from __future__ import annotations

import polars as pl

from pipeline.sample.draw import NULL, digits, pick, random_frame, stream, strings, tmp

PEOPLE_POOL = 65_536
"""People per table (one table for rows with a usable phone, one for the rest)."""

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


def people_table(seed: int) -> pl.DataFrame:
    """People: the first :data:`PEOPLE_POOL` for rows with a usable phone, then the rest.

    Identity profiles: 0 full, 1 name+company, 2 name+email, 3 name only, 4 none. People for
    rows with a damaged phone have fewer identities, so that about 10% of all rows are a bad
    phone with name+company or an email (what a phone-append lookup needs).
    """
    df = random_frame(2 * PEOPLE_POOL, seed + 2, 9)
    first_i, last_i, co_i = (
        stream(0) % len(FIRST_NAMES),
        stream(1) % len(LAST_NAMES),
        stream(2) % len(COMPANIES),
    )
    p = stream(3) % 100
    profile = (
        pl.when(tmp("i") < PEOPLE_POOL)
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
        _first=pl.lit(strings([n for n, _ in FIRST_NAMES])).gather(first_i),
        _last=pl.lit(strings([n for n, _ in LAST_NAMES])).gather(last_i),
        _first_a=pl.lit(strings([a for _, a in FIRST_NAMES])).gather(first_i),
        _last_a=pl.lit(strings([a for _, a in LAST_NAMES])).gather(last_i),
        _company=pl.lit(strings([c for c, _ in COMPANIES])).gather(co_i),
        _company_domain=pl.lit(strings([d for _, d in COMPANIES])).gather(co_i),
    )
    first_a, last_a = tmp("first_a"), tmp("last_a")
    r_mail = stream(4)
    mail_style = r_mail % 10
    local = (
        pl.when(mail_style < 4)
        .then(pl.concat_str(first_a, pl.lit("."), last_a))
        .when(mail_style < 6)
        .then(pl.concat_str(first_a.str.slice(0, 1), last_a))
        .when(mail_style < 8)
        .then(pl.concat_str(first_a, last_a, digits(r_mail // 100, 2)))
        .otherwise(pl.concat_str(first_a, pl.lit("_"), last_a))
    )
    profile_ = tmp("profile")
    has_name, has_company = profile_ <= 3, profile_ <= 1
    has_email = (profile_ == 0) | (profile_ == 2)
    email = pl.concat_str(
        local,
        pl.lit("@"),
        pl.when(has_company & (mail_style < 6))
        .then(tmp("company_domain"))
        .otherwise(pick(WEBMAIL, r_mail // 10)),
    )
    mess = r_mail // 1000 % 100
    messy_email = (
        pl.when(mess < 3)
        .then(pl.concat_str(pl.lit(" "), email.str.to_uppercase(), pl.lit(" ")))
        .when(mess < 4)
        .then(pl.concat_str(local, pl.lit("@")))
        .otherwise(email)
    )
    r_li = stream(5)
    hex4 = pl.concat_str([pick("0123456789abcdef", r_li // 16**k) for k in range(4)])
    slug = pl.concat_str(first_a, last_a, hex4, separator="-")
    linkedin = (
        pl.when(r_li // 65_536 % 10 < 7)
        .then(slug)
        .otherwise(pl.concat_str(pl.lit("https://www.linkedin.com/in/"), slug))
    )
    r_addr = stream(6)
    street = pl.concat_str(
        (r_addr // 100 % 9_899 + 1).cast(pl.String),
        pick(STREETS, r_addr // 1_000_000),
        pick(STREET_TYPES, r_addr // 100_000_000),
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
    r_zip = stream(7)
    zip_code = (
        pl.when(r_zip % 100 < 10)
        .then(pl.concat_str(digits(r_zip // 100, 5), pl.lit("-"), digits(r_zip // 10**7, 4)))
        .when(r_zip % 100 < 16)
        .then(pick(CA_POSTAL_CODES, r_zip // 100))
        .otherwise(digits(r_zip // 100, 5))
    )
    r_ip = stream(8)
    ip = pl.concat_str(
        (r_ip % 223 + 1).cast(pl.String),
        (r_ip // 2**8 % 256).cast(pl.String),
        (r_ip // 2**16 % 256).cast(pl.String),
        (r_ip // 2**24 % 254 + 1).cast(pl.String),
        separator=".",
    )
    r_misc = stream(3) // 100
    return df.select(
        first_name=pl.when(has_name & (r_misc % 100 >= 3)).then(tmp("first")).otherwise(NULL),
        last_name=pl.when(has_name & (r_misc // 100 % 100 >= 3)).then(tmp("last")).otherwise(NULL),
        company=pl.when(has_company).then(tmp("company")).otherwise(NULL),
        domain=pl.when(has_company & (r_misc // 10**4 % 10 < 8))
        .then(tmp("company_domain"))
        .otherwise(NULL),
        email=pl.when(has_email).then(messy_email).otherwise(NULL),
        linkedin=pl.when((profile_ <= 2) & (r_misc // 10**5 % 10 < 3))
        .then(linkedin)
        .otherwise(NULL),
        address=pl.when(r_misc // 10**6 % 100 < 80).then(address).otherwise(NULL),
        zip=pl.when(r_misc // 10**8 % 100 < 75).then(zip_code).otherwise(NULL),
        ip=pl.when(r_misc // 10**10 % 100 < 70).then(ip).otherwise(NULL),
    )
