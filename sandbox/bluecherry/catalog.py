"""Reference data of a fictional apparel tenant, and deterministic builders of customers and styles.

Customer ``i`` is a pure function of (seed, i), so the generator never holds the customer base in memory.
"""

from __future__ import annotations

import random
from typing import Any

FIRST_NAMES = [
    "Olivia",
    "Emma",
    "Charlotte",
    "Amelia",
    "Sophia",
    "Mia",
    "Isabella",
    "Ava",
    "Evelyn",
    "Harper",
    "Liam",
    "Noah",
    "Oliver",
    "James",
    "Elijah",
    "William",
    "Henry",
    "Lucas",
    "Benjamin",
    "Theodore",
    "Renée",
    "José",
    "Zoë",
    "Chloé",
    "Sofía",
    "Mateo",
    "André",
    "Élodie",
    "Siobhán",
    "Jürgen",
    "Priya",
    "Aisha",
    "Mei",
    "Hana",
    "Kwame",
    "Diego",
    "Lucía",
    "Noémie",
    "Björn",
    "Inés",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Clark",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Torres",
    "Nguyen",
    "Hill",
    "Flores",
    "Green",
    "Adams",
    "Nelson",
    "Baker",
    "Hall",
    "Rivera",
    "Campbell",
    "Müller",
    "O'Brien",
    "Dubois",
    "Núñez",
    "Kowalski",
]
CITIES = (
    ("New York", "NY", "100"),
    ("Brooklyn", "NY", "112"),
    ("Boston", "MA", "021"),
    ("Chicago", "IL", "606"),
    ("Austin", "TX", "787"),
    ("Dallas", "TX", "752"),
    ("Denver", "CO", "802"),
    ("Seattle", "WA", "981"),
    ("Portland", "OR", "972"),
    ("San Francisco", "CA", "941"),
    ("Los Angeles", "CA", "900"),
    ("Miami", "FL", "331"),
    ("Atlanta", "GA", "303"),
    ("Philadelphia", "PA", "191"),
    ("Nashville", "TN", "372"),
)
AREA_CODES = (212, 617, 312, 512, 214, 303, 206, 503, 415, 213, 305, 404, 215, 615, 646, 718)
STREETS = (
    "Main St",
    "Oak Ave",
    "Maple Dr",
    "Cedar Ln",
    "Park Ave",
    "Elm St",
    "Pine St",
    "Lake Rd",
    "Hill St",
)
WHOLESALE_ACCOUNTS = (
    "Nordvale Department Stores",
    "Harbor & Finch Boutique",
    "Tall Pines Outfitters",
    "Bluebird Apparel Co",
    "Marigold Fashion House",
    "Summit Sports Retail",
    "Coastal Threads LLC",
    "Urban Loom Stores",
)
CONSENT_SOURCES = ("web signup", "checkout", "POS", "customer service", "import", "preference center")
BRANDS = ("NORTHWIND", "ALPINE & CO", "SEAFARER", "MERIDIAN")
CATEGORIES = ("TOPS", "DRESSES", "OUTERWEAR", "DENIM", "KNITWEAR", "ACCESSORIES")
GENDERS = ("WOMENS", "MENS", "UNISEX")
FABRICS = ("COTTON", "WOOL", "LINEN", "DENIM", "CASHMERE", "POLY")
SEASONS = ("SP26", "SU26", "FA26", "HO26", "CORE")
DIVISIONS = ("APP", "ACC")
COLORS = (
    ("BLK", "Black"),
    ("WHT", "White"),
    ("NVY", "Navy"),
    ("HGR", "Heather Grey"),
    ("OLV", "Olive"),
    ("CML", "Camel"),
    ("BRG", "Burgundy"),
    ("IVR", "Ivory"),
    ("SKY", "Sky Blue"),
    ("RST", "Rust"),
)
SIZE_RANGES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # category -> (sizes, dimensions)
    "TOPS": (("XS", "S", "M", "L", "XL"), ("",)),
    "KNITWEAR": (("XS", "S", "M", "L", "XL"), ("",)),
    "OUTERWEAR": (("S", "M", "L", "XL"), ("",)),
    "DRESSES": (("0", "2", "4", "6", "8", "10", "12"), ("",)),
    "DENIM": (("28", "30", "32", "34", "36"), ("30", "32")),
    "ACCESSORIES": (("OS",), ("",)),
}
NOUNS = {
    "TOPS": ("Tee", "Oxford Shirt", "Linen Shirt", "Tank"),
    "KNITWEAR": ("Crewneck", "Cardigan", "Turtleneck"),
    "OUTERWEAR": ("Parka", "Trench Coat", "Puffer", "Field Jacket"),
    "DRESSES": ("Wrap Dress", "Slip Dress"),
    "DENIM": ("Slim Jean", "Straight Jean", "Wide Leg Jean"),
    "ACCESSORIES": ("Beanie", "Scarf", "Tote Bag"),
}
ADJECTIVES = (
    "Classic",
    "Relaxed",
    "Heritage",
    "Everyday",
    "Cropped",
    "Organic",
    "Merino",
    "Vintage",
    "Coastal",
)
WAREHOUSES = (
    # location, name, type, reserve warehouse, sellable
    ("WH1", "Main Distribution Center", "W", "WH1", "Y"),
    ("WH2", "West Coast DC", "W", "WH2", "Y"),
    ("QC", "Quality Hold", "W", "WH1", "N"),
    ("RTN", "Returns Processing", "W", "WH1", "N"),
)
SELLABLE = ("WH1", "WH2")
# a storefront whose own Klaviyo integration sends Placed Order (a tenant lists it in `storefront_sends_placed`)
STOREFRONT_CHANNEL = "SHOP"
CARRIERS = ("UPS", "FEDEX", "USPS", "DHL")
RETURN_REASONS = (
    ("FIT", "Did not fit"),
    ("DEF", "Defective"),
    ("CHG", "Changed mind"),
    ("WRG", "Wrong item"),
)
CREDIT_REASONS = (("PRC", "Price adjustment"), ("LATE", "Late delivery goodwill"), ("FRT", "Freight refund"))
GUEST = "WEBGUEST"


def _pick(seq: tuple[Any, ...] | list[Any], n: int) -> Any:
    return seq[n % len(seq)]


def customer_code(i: int) -> str:
    return f"C{i:07d}"


def person(seed: int, i: int) -> dict[str, str]:
    """The deterministic person behind customer number ``i`` (also used for guest shoppers)."""
    h = (i * 2654435761 + seed * 40503) & 0xFFFFFFFF
    first = _pick(FIRST_NAMES, h)
    last = _pick(LAST_NAMES, h >> 7)
    city, state, zip3 = _pick(CITIES, h >> 13)
    local = f"{first}.{last}".lower().replace("'", "").encode("ascii", "ignore").decode()
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{local}{i}@example.com",
        "phone": f"({_pick(AREA_CODES, h >> 3)}) {200 + (h >> 9) % 700}-{1000 + i % 9000:04d}",
        "addr1": f"{1 + h % 9899} {_pick(STREETS, h >> 5)}",
        "city": city,
        "state": state,
        "zipcode": f"{zip3}{(h >> 11) % 100:02d}",
    }


def upc_with_check(body11: str) -> str:
    digits = [int(c) for c in body11]
    total = sum(digits[0::2]) * 3 + sum(digits[1::2])
    return body11 + str((10 - total % 10) % 10)


def build_styles(count: int, seed: int) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """``count`` styles with their SKUs: (style header without children, SKU dicts)."""
    rng = random.Random(seed)
    styles = []
    upc_n = 0
    for n in range(count):
        category = _pick(CATEGORIES, n)
        sizes, dimensions = SIZE_RANGES[category]
        brand = rng.choice(BRANDS)
        name = f"{rng.choice(ADJECTIVES)} {rng.choice(NOUNS[category])}"
        price = float(rng.choice((24, 38, 48, 58, 68, 88, 98, 128, 168, 228)))
        division = "ACC" if category == "ACCESSORIES" else "APP"
        season = rng.choice(SEASONS)
        style = f"{category[:2]}{1000 + n:05d}"
        header = {
            "style": style,
            "style_name": name,
            "style_desc": f"{name} by {brand.title()}: {category.lower()} in {rng.choice(FABRICS).lower()}.",
            "group_code1": brand,
            "group_code2": category,
            "group_code3": rng.choice(GENDERS),
            "group_code4": rng.choice(FABRICS),
            "group_code5": "",
            "group_code6": "",
            "group_code7": "",
            "group_code8": "",
            "division": division,
            "season": season,
            "retail_price": price,
            "std_cost": round(price * 0.32, 2),
            "status": "A",
            "size_range": "-".join(sizes),
        }
        skus = []
        for code, color_name in rng.sample(COLORS, k=rng.randint(2, 4)):
            for dimension in dimensions:
                for size_idx, size in enumerate(sizes):
                    upc_n += 1
                    upc = upc_with_check(f"84{seed % 1000:03d}{upc_n:06d}")
                    skus.append(
                        {
                            "upc": upc,
                            "ean": "0" + upc,
                            "style": style,
                            "style_name": name,
                            "style_desc": header["style_desc"],
                            "color_code": code,
                            "color_name": color_name,
                            "lbl_code": "",
                            "dimension": dimension,
                            "size_desc": size,
                            "size_code": size_idx + 1,
                            "sizes": header["size_range"],
                            "status": "A",
                            "retail_price": price,
                            "std_cost": header["std_cost"],
                            "division": division,
                            "season": season,
                            "brand": brand,
                        }
                    )
        styles.append((header, skus))
    return styles
