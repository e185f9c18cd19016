"""The concepts behind the mapping's field keys: the words a tenant's column name may use for each (whole or
abbreviated, `sync.onboarding.names`) and the kinds of values it holds (`sync.onboarding.shapes`).

One `Concept` per key of a ``[fields.*]`` table (dotted below it: "email", "lines.qty", "addresses.city",
"sku_upc"). Values decide where they can (an e-mail address, a phone number, a yes/no flag, a date, money, a
UPC); the words break ties and name what values cannot tell apart (an e-mail consent flag from an SMS one).
"""

from __future__ import annotations

from dataclasses import dataclass

Words = tuple[str, ...]

EMAIL: Words = ("email", "mail", "emailaddr", "emailaddress", "eml", "em")
PHONE: Words = ("phone", "tel", "telephone", "mobile", "cell", "phonenumber", "phn")
SMS: Words = ("sms", "text", "txt", "mobile", "cell", "phone")
OPT: Words = ("optin", "opt", "consent", "subscribed", "subscribe", "subscr", "marketing", "mkt", "permission",
              "allow", "accepts", "accept", "newsletter", "ok")
DATE: Words = ("date", "dt", "time", "ts", "stamp", "when", "on", "at")
SOURCE: Words = ("source", "src", "origin", "via", "how")
DELETE: Words = ("delete", "deleted", "del", "purge", "remove", "removed", "void", "erase")
NAME: Words = ("name", "nm", "fullname")
FIRST: Words = ("first", "fname", "given", "forename", "fst")
LAST: Words = ("last", "lname", "surname", "family", "lst")
STATUS: Words = ("status", "stat", "sts")
CREATED: Words = ("created", "create", "crt", "open", "opened", "since", "added", "setup", "start", "entered",
                  "joined", "registered")
DIVISION: Words = ("division", "div", "company", "cmp", "dvsn")
GROUP: Words = ("group", "grp", "class", "cls", "type", "typ", "segment", "tier", "category", "cat")
CODE: Words = ("code", "cd", "no", "num", "number", "nbr", "id", "key", "ref")
CUSTOMER: Words = ("customer", "cust", "cus", "client", "account", "acct", "buyer", "shopper", "soldto")
ORDER: Words = ("order", "ord", "so", "sales", "salesorder")
PICK: Words = ("pick", "pk", "pck", "picking", "ticket", "pickticket", "shipment", "dispatch", "delivery")
INVOICE: Words = ("invoice", "inv", "bill", "billing")
MEMO: Words = ("memo", "credit", "cm", "crmemo", "creditmemo", "return", "returns", "refund", "rtn", "cr")
STYLE: Words = ("style", "sty", "item", "product", "prod", "article", "model")
STOCK: Words = ("inventory", "stock", "availability", "avail", "ats", "balance", "onhand", "qty", "itemavailability")
LOCATION: Words = ("location", "loc", "warehouse", "whse", "wh", "site", "store", "depot")
TYPE: Words = ("type", "typ", "kind", "tp")
CHANNEL: Words = ("channel", "chan", "chnl", "source", "src", "origin", "medium")
SEASON: Words = ("season", "ssn", "sea", "collection")
CURRENCY: Words = ("currency", "curr", "cur", "ccy", "crncy")
DISCOUNT: Words = ("discount", "disc", "dsc", "promo", "coupon", "markdown")
TAX: Words = ("tax", "vat", "gst", "salestax")
FREIGHT: Words = ("freight", "frgt", "frt", "shipping", "postage", "carriage", "delivery", "handling")
WAREHOUSE: Words = ("warehouse", "whse", "wh", "location", "loc", "site", "store", "depot", "whs")
STOREFRONT: Words = ("web", "ecom", "ecommerce", "shop", "storefront", "online", "external", "ext", "shopify")
REFERENCE: Words = ("ref", "reference", "id", "no", "num", "number")
CONFIRMED: Words = ("confirmed", "confirm", "conf", "cnf", "approved", "released", "booked", "accepted")
ENTERED: Words = ("entered", "entry", "ent", "ord", "order", "placed", "created", "taken", "booked")
LINE: Words = ("line", "seq", "ln", "lineno", "sequence", "lin", "row", "pos", "position")
COLOR: Words = ("color", "colour", "clr", "col", "colr")
LABEL: Words = ("label", "lbl", "lab", "brandlabel")
DIMENSION: Words = ("dimension", "dim", "width", "fit", "inseam", "length", "pack", "dm")
SIZE: Words = ("size", "sz", "siz", "sze")
UPC: Words = ("upc", "ean", "gtin", "barcode", "bar")
EAN: Words = ("ean", "gtin", "ean13", "european")
PRICE: Words = ("price", "prc", "unit", "rate", "retail", "sell", "selling", "msrp", "amount", "amt")
QTY: Words = ("qty", "quantity", "units", "pcs", "pieces", "count", "cnt", "qnty")
CANCEL: Words = ("cancel", "cancelled", "canceled", "cncl", "cxl", "void")
BACKORDER: Words = ("bo", "bk", "backorder", "back", "open", "left", "remaining", "remain", "short", "unfilled")
DESCRIPTION: Words = ("description", "desc", "descr", "title", "name", "text", "dsc")
SHIP: Words = ("ship", "shipped", "shp", "dispatch", "dispatched", "sent", "delivered")
CARRIER: Words = ("carrier", "shipper", "via", "courier", "scac", "carr", "shipvia", "service")
TRACKING: Words = ("tracking", "track", "trk", "trck", "awb", "waybill", "consignment", "parcel")
MERCHANDISE: Words = ("merchandise", "merch", "goods", "subtotal", "sub", "product", "lines", "net")
TOTAL: Words = ("total", "tot", "grand", "amount", "amt", "sum", "net", "value")
REASON: Words = ("reason", "rsn", "why", "cause", "rc")
RESTOCK: Words = ("restock", "rstk", "restocked", "resell", "stock", "returned", "rtn", "putaway", "back")
BRAND: Words = ("brand", "brnd", "label", "make", "vendor", "designer")
CATEGORY: Words = ("category", "categ", "cat", "class", "dept", "department", "type", "group")
GENDER: Words = ("gender", "sex", "gndr", "gend")
ONHAND: Words = ("onhand", "oh", "hand", "qoh", "soh", "physical", "total", "stock")
PICKED: Words = ("picked", "pick", "alloc", "allocated", "pck", "reserved", "committed")
AVAILABLE: Words = ("available", "avail", "ava", "avl", "free", "aoh")
OPEN: Words = ("open", "orders", "demand", "backlog", "ord", "order", "unshipped", "opn")
SELLABLE: Words = ("sellable", "sell", "sale", "saleable", "ecom", "web", "available", "use", "active", "atp")
ADDRESS1: Words = ("addr1", "address1", "line1", "street", "street1", "adr1", "address", "addr", "add1", "a1")
ADDRESS2: Words = ("addr2", "address2", "line2", "street2", "adr2", "add2", "a2", "suite", "apt")
CITY: Words = ("city", "town", "cty", "locality")
REGION: Words = ("state", "region", "province", "prov", "county", "st")
ZIP: Words = ("zip", "zipcode", "postal", "postcode", "postalcode", "plz", "zcode", "pcode")
COUNTRY: Words = ("country", "cntry", "ctry", "nation", "cntr")
BILL: Words = ("bill", "billing", "bt", "billto", "sold", "soldto", "invoice", "inv", "b")
SHIPTO: Words = ("ship", "shipping", "st", "shipto", "deliver", "delivery", "dlv", "s")
ADDR_TYPE: Words = ("type", "typ", "kind", "addrtype", "usage", "role", "tp")


@dataclass(frozen=True)
class Concept:
    """A field key: `words` are groups that must all be said (AND of ORs); `kinds` the value kinds it holds
    (any of them; none = any value, told by the name alone); `bonus` words that rank it among lookalikes."""

    key: str
    words: tuple[Words, ...]
    kinds: tuple[str, ...] = ()
    bonus: Words = ()
    label: str = ""
    avoid: Words = ()  # words that say another thing of the same kind (a fax is no phone for marketing)

    def describe(self) -> str:
        return self.label or self.key.replace("_", " ")


def _c(key: str, *words: Words, kinds: tuple[str, ...] = (), bonus: Words = (), label: str = "",
       avoid: Words = ()) -> Concept:
    return Concept(key, tuple(words), kinds, bonus, label, avoid)


ADDRESS_CONCEPTS: tuple[Concept, ...] = (
    _c("addresses.name", NAME, kinds=("alpha",), label="address name"),
    _c("addresses.addr1", ADDRESS1, kinds=("alpha",), label="address line 1"),
    _c("addresses.addr2", ADDRESS2, kinds=("alpha", "code"), label="address line 2"),
    _c("addresses.city", CITY, kinds=("alpha",), label="city"),
    _c("addresses.state", REGION, kinds=("code",), label="state / region"),
    _c("addresses.zipcode", ZIP, kinds=("code", "integer"), label="zip / postal code"),
    _c("addresses.country", COUNTRY, kinds=("code",), label="country"),
    _c("addresses.email", EMAIL, kinds=("email",), label="address e-mail"),
    _c("addresses.phone", PHONE, kinds=("phone",), label="address phone"),
)

CUSTOMER_CONCEPTS: tuple[Concept, ...] = (
    _c("email", EMAIL, kinds=("email",), label="e-mail address",
       avoid=("alt", "alternate", "second", "secondary", "cc", "bcc", "invoice", "billing", "accounting")),
    _c("phone", PHONE, kinds=("phone",), label="phone number", avoid=("fax", "facsimile", "telex", "pager")),
    _c("email_optin", EMAIL, OPT, kinds=("flag", "flag_digit"), label="e-mail consent flag"),
    _c("sms_optin", SMS, OPT, kinds=("flag", "flag_digit"), label="SMS consent flag"),
    _c("delete_flag", DELETE, kinds=("flag", "flag_digit"), label="deletion flag"),
    _c("email_optin_date", EMAIL, DATE, kinds=("date",), bonus=OPT, label="e-mail consent date"),
    _c("sms_optin_date", SMS, DATE, kinds=("date",), bonus=OPT, label="SMS consent date"),
    _c("email_optin_source", EMAIL, SOURCE, bonus=OPT, label="e-mail consent source"),
    _c("sms_optin_source", SMS, SOURCE, bonus=OPT, label="SMS consent source"),
    _c("first_name", FIRST, kinds=("alpha",), bonus=NAME, label="first name"),
    _c("last_name", LAST, kinds=("alpha",), bonus=NAME, label="last name"),
    _c("name", NAME, kinds=("alpha",), bonus=CUSTOMER, label="full name"),
    _c("created", CREATED, kinds=("date",), bonus=DATE, label="creation date"),
    _c("status", STATUS, kinds=("code",), label="status code"),
    _c("division", DIVISION, kinds=("code",), label="division"),
)

# the parts of a SKU key, as order lines and inventory rows name them
SKU_PARTS: tuple[Concept, ...] = (
    _c("color_code", COLOR, kinds=("code",), bonus=CODE, label="colour code"),
    _c("lbl_code", LABEL, kinds=("code",), label="label code"),
    _c("dimension", DIMENSION, kinds=("code",), label="dimension"),
    _c("size_desc", SIZE, kinds=("code",), label="size"),
    _c("upc", UPC, kinds=("upc",), label="UPC"),
)

LINE_CONCEPTS: tuple[Concept, ...] = (
    _c("line_seq", LINE, kinds=("integer", "code"), bonus=CODE, label="line number"),
    _c("style", STYLE, kinds=("code",), label="style"),
    *SKU_PARTS,
    _c("price", PRICE, kinds=("money",), label="unit price"),
    _c("qty", QTY, kinds=("integer", "decimal"), label="quantity"),
    _c("cancel_qty", CANCEL, kinds=("integer", "decimal"), bonus=QTY, label="cancelled quantity"),
    _c("description", DESCRIPTION, kinds=("alpha",), label="description"),
)
# what a line's quantity says per document: the ordered, picked, invoiced or returned quantity
LINE_QTY_BONUS: dict[str, Words] = {
    "order": ("ord", "ordered", "order", "orig"),
    "pick": ("pick", "picked", "pck", "total", "ship", "shipped"),
    "invoice": ("inv", "invoiced", "billed", "bill", "ship", "shipped"),
    "creditmemo": ("ret", "return", "returned", "credit", "cr", "rtn"),
}
LINE_CANCEL_WORDS: dict[str, Words] = {"order": CANCEL, "pick": BACKORDER + CANCEL, "invoice": CANCEL,
                                       "creditmemo": CANCEL}

ORDER_CONCEPTS: tuple[Concept, ...] = (
    _c("status", STATUS, kinds=("code",), bonus=ORDER, label="order status code"),
    _c("confirmed", CONFIRMED, kinds=("date",), bonus=DATE, label="confirmation date"),
    _c("entered", ENTERED, DATE, kinds=("date",), label="entry date"),
    _c("ord_type", TYPE, kinds=("code",), bonus=ORDER, label="order type"),
    _c("sales_channel", CHANNEL, kinds=("code",), label="sales channel"),
    _c("division", DIVISION, kinds=("code",), label="division"),
    _c("season", SEASON, kinds=("code",), label="season"),
    _c("currency", CURRENCY, kinds=("currency",), label="currency"),
    _c("discount_code", DISCOUNT, CODE, kinds=("code",), label="discount code"),
    _c("discount", DISCOUNT, kinds=("money",), bonus=("amt", "amount", "value"), label="discount"),
    _c("tax", TAX, kinds=("money",), label="tax"),
    _c("freight", FREIGHT, kinds=("money",), label="freight"),
    _c("warehouse", WAREHOUSE, kinds=("code",), label="warehouse"),
    _c("storefront_ref", STOREFRONT, kinds=("code", "alpha", "integer"), bonus=REFERENCE,
       label="storefront reference"),
)

PICK_CONCEPTS: tuple[Concept, ...] = (
    _c("status", STATUS, kinds=("code",), bonus=PICK, label="pick status"),
    _c("ship_date", SHIP, DATE, kinds=("date",), label="ship date"),
    _c("carrier", CARRIER, kinds=("code", "alpha"), label="carrier"),
    _c("tracking", TRACKING, kinds=("code", "integer", "upc"), label="tracking number"),
)

INVOICE_CONCEPTS: tuple[Concept, ...] = (
    _c("date", INVOICE + DATE, kinds=("date",), bonus=DATE, label="invoice date"),
    _c("carrier", CARRIER, kinds=("code", "alpha"), label="carrier"),
    _c("tracking", TRACKING, kinds=("code", "integer", "upc"), label="tracking number"),
    _c("merchandise", MERCHANDISE, kinds=("money",), label="merchandise amount"),
    _c("discount", DISCOUNT, kinds=("money",), label="discount"),
    _c("tax", TAX, kinds=("money",), label="tax"),
    _c("freight", FREIGHT, kinds=("money",), label="freight"),
    _c("total", TOTAL, kinds=("money",), bonus=INVOICE, label="invoice total"),
)

MEMO_CONCEPTS: tuple[Concept, ...] = (
    _c("date", MEMO + DATE, kinds=("date",), bonus=DATE, label="memo date"),
    _c("reason_code", REASON, kinds=("code",), bonus=CODE, label="reason code"),
    _c("reason", REASON, kinds=("alpha",), bonus=DESCRIPTION, label="reason text"),
    _c("restock", RESTOCK, kinds=("flag", "flag_digit"), label="restock flag"),
    _c("total", TOTAL, kinds=("money",), bonus=MEMO, label="memo total"),
    _c("tax", TAX, kinds=("money",), label="tax"),
    _c("freight", FREIGHT, kinds=("money",), label="freight"),
)

STYLE_CONCEPTS: tuple[Concept, ...] = (
    _c("name", NAME + ("descr", "desc", "title"), kinds=("alpha",), bonus=STYLE, label="style name"),
    _c("description", ("description", "long", "longdesc", "details", "text", "copy"), kinds=("alpha",),
       label="style description"),
    _c("brand", BRAND, kinds=("code", "alpha"), label="brand"),
    _c("category", CATEGORY, kinds=("code", "alpha"), label="category"),
    _c("gender", GENDER, kinds=("code", "alpha"), label="gender"),
    _c("division", DIVISION, kinds=("code",), label="division"),
    _c("season", SEASON, kinds=("code",), label="season"),
    _c("price", PRICE, kinds=("money",), label="retail price"),
    _c("status", STATUS, kinds=("code",), label="style status"),
)
SKU_CONCEPTS: tuple[Concept, ...] = (
    _c("sku_upc", UPC, kinds=("upc",), label="SKU UPC"),
    _c("sku_ean", EAN, kinds=("upc",), label="SKU EAN"),
    _c("sku_color", COLOR, kinds=("code",), bonus=CODE, label="SKU colour code"),
    _c("sku_color_name", COLOR, NAME + DESCRIPTION, kinds=("alpha",), label="SKU colour name"),
    _c("sku_label", LABEL, kinds=("code",), label="SKU label"),
    _c("sku_dimension", DIMENSION, kinds=("code",), label="SKU dimension"),
    _c("sku_size", SIZE, kinds=("code",), label="SKU size"),
    _c("sku_status", STATUS, kinds=("code",), label="SKU status"),
    _c("sku_price", PRICE, kinds=("money",), label="SKU price"),
)

INVENTORY_CONCEPTS: tuple[Concept, ...] = (
    *SKU_PARTS,
    _c("available_on_hand", AVAILABLE, kinds=("integer", "decimal"), label="available on hand"),
    _c("on_hand", ONHAND, kinds=("integer", "decimal"), label="on hand"),
    _c("picked", PICKED, kinds=("integer", "decimal"), label="picked / allocated"),
    _c("open_orders", OPEN, kinds=("integer", "decimal"), bonus=QTY, label="open orders"),
)

LOCATION_CONCEPTS: tuple[Concept, ...] = (
    _c("name", NAME + DESCRIPTION, kinds=("alpha",), label="location name"),
    _c("sellable", SELLABLE, kinds=("flag", "flag_digit"), label="sellable flag"),
)

# the words of each resource (role), for its path and as a tie-break between lookalike resources
ROLE_WORDS: dict[str, Words] = {
    "customer": CUSTOMER, "order": ORDER, "pick": PICK, "invoice": INVOICE, "creditmemo": MEMO, "style": STYLE,
    "inventory": STOCK, "location": LOCATION,
}
ROLES = ("customer", "order", "pick", "invoice", "creditmemo", "style", "inventory", "location")

# The identifiers and links `suggest` finds by who points at whom; `check` names lookalikes of them by name
REFERENCE_CONCEPTS: dict[str, tuple[Concept, ...]] = {
    "customer": (_c("code", CUSTOMER, CODE, kinds=("code", "integer"), label="customer code"),),
    "order": (_c("number", ORDER, CODE, kinds=("code", "integer"), label="order number"),
              _c("customer", CUSTOMER, kinds=("code", "integer"), label="customer code")),
    "pick": (_c("number", PICK, CODE, kinds=("code", "integer"), label="pick number"),
             _c("order", ORDER, kinds=("code", "integer"), label="order number"),
             _c("invoice", INVOICE, kinds=("code", "integer"), label="invoice number")),
    "invoice": (_c("number", INVOICE, CODE, kinds=("code", "integer"), label="invoice number"),
                _c("order", ORDER, kinds=("code", "integer"), label="order number"),
                _c("pick", PICK, kinds=("code", "integer"), label="pick number")),
    "creditmemo": (_c("number", MEMO, CODE, kinds=("code", "integer"), label="memo number"),
                   _c("order", ORDER, kinds=("code", "integer"), label="order number"),
                   _c("invoice", INVOICE, kinds=("code", "integer"), label="invoice number")),
    "style": (_c("style", STYLE, kinds=("code",), label="style code"),),
    "inventory": (_c("style", STYLE, kinds=("code",), label="style code"),
                  _c("warehouse", WAREHOUSE, kinds=("code",), label="warehouse code")),
    "location": (_c("code", LOCATION + WAREHOUSE, kinds=("code",), label="location code"),),
}

# Concepts of each resource's own table, for lookalikes of unmapped fields (`check`)
TABLE_CONCEPTS: dict[str, tuple[Concept, ...]] = {
    "customer": CUSTOMER_CONCEPTS, "order": ORDER_CONCEPTS, "pick": PICK_CONCEPTS, "invoice": INVOICE_CONCEPTS,
    "creditmemo": MEMO_CONCEPTS, "style": STYLE_CONCEPTS, "inventory": INVENTORY_CONCEPTS,
    "location": LOCATION_CONCEPTS,
}
KEY_WORDS: Words = ("pkey", "key", "id", "rrn", "recno", "rowid", "pk", "recid", "rec", "oid", "uid", "seq")
STAMP_WORDS: Words = ("mod", "modified", "lastmod", "chg", "change", "changed", "upd", "update", "updated", "stamp",
                      "ts", "timestamp", "last", "edited", "maint", "lmd", "audit")
