"""Deterministic Pages, forms, ads and leads, derived from (seed, index).

A lead is never stored: its id, creation time and answers are computed from its form and
its index, so a million leads cost nothing until they are served. Creation time grows with
the index (evenly spread over ``days`` with a little jitter), which turns a time filter into an
index range. Leads added at run time (``add_leads``, ``test_leads``) are kept as dicts in a
small per-form list and merged in.
"""

from __future__ import annotations

import bisect
import json
import operator
import random
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from fb_graph.fields import AD_FIELDS, FORM_FIELDS, LEAD_FIELDS
from fb_graph_sandbox.config import SandboxConfig

LEAD_DEFAULT_FIELDS = ("id", "created_time", "field_data")

FORM_DEFAULT_FIELDS = ("id", "name", "locale", "status")
# What a form node serves: the fields fb-leads reads, and two more Meta's SDK asks for.
FORM_NODE_FIELDS = (*FORM_FIELDS, "page", "creator")
# Pages, ads and users (the token's owner, the forms' creator) serve these.
NAMED_FIELDS = ("id", "name")
FORM_STATUSES = ("ACTIVE", "ARCHIVED", "DELETED", "DRAFT")
# A lead template and the getter that picks its %s values from a lead's values.
_Compiled = tuple[str, Callable[[tuple[str, ...]], tuple[str, ...]]]

# Lead ids: 16 digits, "2" + 5-digit form code + 10-digit scrambled index.
_LEAD_BASE = 2 * 10**15
_LEAD_SPAN = 10**10
_LEAD_MULT = 6_364_136_223  # odd and not a multiple of 5: invertible modulo 10**10
_LEAD_MULT_INV = pow(_LEAD_MULT, -1, _LEAD_SPAN)
# Leads cycle over (ad 0, ad 1, organic) by index: ad leads of ad r are index % 3 == r.
VARIANTS = 3
ORGANIC = 2

FIRST_NAMES = (
    "Ana", "John", "Mary", "José", "Valéry", "Wei", "Fatima", "Oluwaseun",
    "Emma", "Liam", "Sofía", "Noah", "Chloé", "Yuki", "Ahmed", "Zoë",
)  # fmt: skip
LAST_NAMES = (
    "Smith", "García", "Müller", "Nguyen", "O'Brien", "Rossi",
    "Kowalski", "Dubois", "Tanaka", "Okafor", "Silva", "Johansson",
)  # fmt: skip
CITIES = (
    ("San Francisco", "94105"),
    ("New York", "10001-1234"),
    ("Austin", "73301"),
    ("München", "80331"),
    ("São Paulo", "01310-100"),
    ("Lyon", "69002"),
)
PRODUCTS = ("solar_panels", "heat_pump", "home_battery", "ev_charger")
BUDGETS = ("menos_de_1000", "entre_1000_y_5000", "más_de_5000")
STORES = ("1042", "2310", "3177", "4025", "5561", "6008")
CONTACT_TIMES = ("morning", "afternoon", "evening")
UNICODE_KEY = "¿cuál_es_tu_presupuesto?"
PLATFORMS = ("fb", "fb", "fb", "ig")


def _ascii(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return "".join(c for c in plain.lower() if c.isalnum())


def _js(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def questions() -> list[dict]:
    """The questions every sandbox form asks (standard types, custom and Unicode keys)."""
    return [
        {"key": "full_name", "label": "Full name", "type": "FULL_NAME"},
        {"key": "email", "label": "Email", "type": "EMAIL"},
        {"key": "phone_number", "label": "Phone number", "type": "PHONE"},
        {"key": "city", "label": "City", "type": "CITY"},
        {"key": "zip_code", "label": "ZIP code", "type": "ZIP"},
        {
            "key": "which_products_interest_you?",
            "label": "Which products interest you? (choose all that apply)",
            "type": "CUSTOM",
            "options": [{"key": p, "value": p.replace("_", " ").title()} for p in PRODUCTS],
        },
        {
            "key": UNICODE_KEY,
            "label": "¿Cuál es tu presupuesto?",
            "type": "CUSTOM",
            "options": [{"key": b, "value": b.replace("_", " ")} for b in BUDGETS],
        },
        {
            "key": "preferred_contact_time",
            "label": "When should we call you?",
            "type": "CUSTOM",
            "options": [{"key": c, "value": c.title()} for c in CONTACT_TIMES],
        },
        {"key": "store_locator", "label": "Nearest store", "type": "STORE_LOOKUP"},
    ]


# Pre-rendered JSON fragments for field_data: a lead's answers are picked from these.
_NAMES_JS = [[_js(f"{f} {la}")[1:-1] for la in LAST_NAMES] for f in FIRST_NAMES]
_EMAIL_LOCAL = [[f"{_ascii(f)}.{_ascii(la)}" for la in LAST_NAMES] for f in FIRST_NAMES]
_EMAIL_LOCAL_CAPS = [[f"{_ascii(f).title()}.{_ascii(la).title()}" for la in LAST_NAMES]
                     for f in FIRST_NAMES]  # fmt: skip
_CITIES_JS = [(_js(c)[1:-1], z) for c, z in CITIES]
_PRODUCTS_JS = [
    ",".join(_js(p) for bit, p in enumerate(PRODUCTS) if mask & (1 << bit))
    for mask in range(1 << len(PRODUCTS))
]
_BUDGETS_JS = [_js(b)[1:-1] for b in BUDGETS]
_FD_TEMPLATE = (
    '[{"name":"full_name","values":["%s"]},'
    '{"name":"email","values":["%s"]},'
    '{"name":"phone_number","values":["%s"]},'
    '{"name":"city","values":["%s"]},'
    '{"name":"zip_code","values":["%s"]},'
    '{"name":"which_products_interest_you?","values":[%s]},'
    '{"name":' + _js(UNICODE_KEY) + ',"values":["%s"]},'
    '{"name":"preferred_contact_time","values":["%s"]},'
    '{"name":"store_locator","values":["%s"]}]'
)
_CDR_JS = [
    _js(
        [
            {"checkbox_key": "optional_1", "is_checked": "1" if mask & 1 else ""},
            {"checkbox_key": "optional_2", "is_checked": "1" if mask & 2 else ""},
        ]
    )
    for mask in range(4)
]


def _mix(i: int, salt: int) -> int:
    h = ((i + salt) * 0x9E3779B1) & 0xFFFFFFFF
    return h ^ (h >> 15)


def time_string(unix: int) -> str:
    """Graph's timestamp format: ``2026-11-20T10:11:12+0000``."""
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(unix))


@dataclass
class Ad:
    id: str
    name: str
    adset_id: str
    adset_name: str
    campaign_id: str
    campaign_name: str
    form_id: str
    residue: int

    def fields(self) -> dict[str, str]:
        return {
            "ad_id": self.id,
            "ad_name": self.name,
            "adset_id": self.adset_id,
            "adset_name": self.adset_name,
            "campaign_id": self.campaign_id,
            "campaign_name": self.campaign_name,
        }


@dataclass
class Form:
    """One lead form: its own settings, and the arithmetic that yields its leads."""

    ordinal: int
    code: int  # the form's 5 digits in its lead ids: (ordinal + a seeded offset) % 10**5
    id: str
    page_id: str
    name: str
    status: str
    created: int
    count: int  # generated leads
    start: int  # created_time of index 0
    span: int  # seconds over which leads are spread
    salt: int
    ads: list[Ad]
    added: list[dict] = field(default_factory=list)  # run-time leads, sorted by (ct, index)
    added_keys: list[tuple[int, int]] = field(default_factory=list)
    added_made: int = 0  # run-time leads ever made: the next one's index is count + this
    added_questions: list[dict] = field(default_factory=list)  # asked after questions()

    # -- identity and time -------------------------------------------------------------
    def lead_id(self, i: int) -> str:
        scrambled = (i * _LEAD_MULT + self.salt) % _LEAD_SPAN
        return str(_LEAD_BASE + self.code * _LEAD_SPAN + scrambled)

    def created_at(self, i: int) -> int:
        n = self.count
        step = self.span // n if n else 0
        base = self.start + (i * self.span) // n if n else self.start
        if step > 1:
            base += _mix(i, self.salt) % step
        return base

    def key(self, i: int) -> tuple[int, int]:
        return (self.created_at(i), i)

    # -- window arithmetic ---------------------------------------------------------------
    def first_at_or_after(self, unix: int) -> int:
        """Smallest generated index whose created_time is >= ``unix``."""
        return bisect.bisect_left(range(self.count), unix, key=self.created_at)

    def first_key_at_or_after(self, key: tuple[int, int]) -> int:
        return bisect.bisect_left(range(self.count), key, key=self.key)

    @property
    def total(self) -> int:
        return self.count + len(self.added)


class SandboxData:
    """Everything the sandbox serves, derived from a :class:`SandboxConfig`."""

    def __init__(self, config: SandboxConfig, now: int) -> None:
        self.config = config
        self.now = now
        self._lock = threading.Lock()
        rng = random.Random(config.seed)
        used: set[str] = set()

        def new_id(low: int, high: int) -> str:
            while True:
                value = str(rng.randrange(low, high))
                if value not in used:
                    used.add(value)
                    return value

        span = max(1, int(config.days * 86400))
        self.pages: dict[str, dict] = {}
        self.form_by_id: dict[str, Form] = {}
        self.forms_by_ordinal: list[Form] = []
        self.ads: dict[str, Ad] = {}
        self._forms_of_page: dict[str, list[Form]] = {}
        ordinal = 0
        self._code_offset = rng.randrange(10**4, 9 * 10**4)
        for p in range(config.pages):
            page_id = new_id(10**14, 2 * 10**14)
            self.pages[page_id] = {"id": page_id, "name": f"Sandbox Page {p + 1}"}
            self._forms_of_page[page_id] = []
            for f in range(config.forms_per_page):
                status = FORM_STATUSES[f % len(FORM_STATUSES)]
                form_id = new_id(10**15, 2 * 10**15)
                ads = []
                for r in range(VARIANTS - 1):
                    ad = Ad(
                        id=new_id(23_850 * 10**12, 23_860 * 10**12),
                        name=f"Ad {r + 1} - form {ordinal + 1}",
                        adset_id=new_id(23_850 * 10**12, 23_860 * 10**12),
                        adset_name=f"Ad set {r + 1} - form {ordinal + 1}",
                        campaign_id=new_id(23_850 * 10**12, 23_860 * 10**12),
                        campaign_name=f"Campaign {r + 1} - form {ordinal + 1}",
                        form_id=form_id,
                        residue=r,
                    )
                    ads.append(ad)
                    self.ads[ad.id] = ad
                form = Form(
                    ordinal=ordinal,
                    code=(ordinal + self._code_offset) % 10**5,
                    id=form_id,
                    page_id=page_id,
                    name=f"Sandbox form {ordinal + 1} ({status.lower()})",
                    status=status,
                    created=now - span - 86400 * (1 + f),
                    count=0 if status == "DRAFT" else config.leads_per_form,
                    start=now - span,
                    span=span,
                    salt=(config.seed * 1_000_003 + ordinal * 7_777_777) % _LEAD_SPAN,
                    ads=ads,
                )
                self.form_by_id[form_id] = form
                self.forms_by_ordinal.append(form)
                self._forms_of_page[page_id].append(form)
                ordinal += 1
        # Drawn last, so the ids above do not depend on it.
        self.user = {"id": new_id(10**14, 2 * 10**14), "name": "Sandbox Admin"}
        self._templates: dict[tuple, _Compiled] = {}
        # Called with (form, the new leads as stored) after leads are added (webhooks).
        self.on_added: Callable[[Form, list[dict]], None] | None = None

    # -- public helpers (the contract) --------------------------------------------------
    @property
    def page_ids(self) -> list[str]:
        return list(self.pages)

    def form_ids(self, page_id: str | None = None) -> list[str]:
        if page_id is None:
            return [f.id for f in self.forms_by_ordinal]
        return [f.id for f in self._forms_of_page[page_id]]

    def owner(self) -> dict:
        """Whom every token belongs to (``GET /me``): the first Page, else the admin user."""
        return next(iter(self.pages.values()), self.user)

    def forms_of_page(self, page_id: str) -> list[Form]:
        return self._forms_of_page[page_id]

    def forms(self, page_id: str) -> list[dict]:
        """Full form objects of a Page, as ``leadgen_forms`` serves them."""
        return [self.form_object(f) for f in self._forms_of_page[page_id]]

    def ad_ids(self, form_id: str) -> list[str]:
        return [a.id for a in self.form_by_id[form_id].ads]

    def lead_count(self, form_id: str) -> int:
        return self.form_by_id[form_id].total

    def leads(self, form_id: str) -> Iterator[dict]:
        """Every lead of a form, every field, oldest first, then the added ones."""
        form = self.form_by_id[form_id]
        for i in range(form.count):
            yield json.loads(self.render_lead(form, i, LEAD_FIELDS, True))
        with self._lock:
            added = list(form.added)
        for lead in sorted(added, key=lambda d: d["_index"]):
            yield self.public(lead)

    def lead(self, lead_id: str) -> dict | None:
        found = self.find_lead(lead_id)
        if found is None:
            return None
        form, i, added = found
        if added is not None:
            return self.public(added)
        return json.loads(self.render_lead(form, i, LEAD_FIELDS, True))

    # -- forms ----------------------------------------------------------------------------
    def form_object(self, form: Form) -> dict:
        with self._lock:
            organic_added = sum(1 for d in form.added if d.get("is_organic"))
        organic = (form.count + VARIANTS - 1 - ORGANIC) // VARIANTS + organic_added
        return {
            "id": form.id,
            "name": form.name,
            "status": form.status,
            "locale": "en_US",
            "created_time": time_string(form.created),
            "page_id": form.page_id,
            "page": dict(self.pages[form.page_id]),
            "creator": dict(self.user),
            "leads_count": form.total,
            "organic_leads_count": organic,
            "expired_leads_count": 0,
            "questions": self.form_questions(form),
            "privacy_policy_url": "https://example.com/privacy",
            "follow_up_action_url": "https://example.com/thanks",
            "follow_up_action_text": "Visit website",
            "context_card": {"id": str(10**15 + form.ordinal * 100 + 99), "title": "Why us"},
            "thank_you_page": {"id": str(10**15 + form.ordinal * 100 + 98), "title": "Thanks!"},
            "legal_content": {
                "id": str(10**15 + form.ordinal * 100 + 97),
                "custom_disclaimer": {
                    "checkboxes": [
                        {"key": "optional_1", "text": "Send me offers", "is_required": False},
                        {"key": "optional_2", "text": "Call me", "is_required": False},
                    ]
                },
            },
            "tracking_parameters": [{"key": "utm_source", "value": "facebook"}],
            "is_optimized_for_quality": form.ordinal % 2 == 0,
            "block_display_for_non_targeted_viewer": False,
            "allow_organic_lead": True,
            "question_page_custom_headline": "Tell us about you",
        }

    def form_questions(self, form: Form) -> list[dict]:
        """The form's questions as Meta serves them (``key``, ``label``, ``type``,
        ``options`` when it has choices, ``id``): :func:`questions`, then those added."""
        with self._lock:
            added = list(form.added_questions)
        return [
            {**q, "id": str(10**15 + form.ordinal * 100 + n)}
            for n, q in enumerate([*questions(), *added])
        ]

    def add_question(
        self,
        form_id: str,
        key: str,
        label: str | None = None,
        type: str = "CUSTOM",
        options: list[str] | None = None,
    ) -> dict:
        """Ask one more question on a form (an advertiser edited it): the form serves it from
        now on, and the leads added from now on answer it (see :meth:`added_answer`).
        Returns the question as served. Meta keeps a form's keys unique: a repeated key is
        refused."""
        form = self.form_by_id[form_id]
        if not isinstance(key, str) or not key:
            raise ValueError("a question needs a key")
        if any(q["key"] == key for q in self.form_questions(form)):
            raise ValueError(f"form {form_id} already asks {key!r}")
        question: dict = {"key": key, "label": label or key, "type": type}
        if options:
            question["options"] = [{"key": o, "value": o.replace("_", " ")} for o in options]
        with self._lock:
            form.added_questions.append(question)
        return self.form_questions(form)[-1]

    @staticmethod
    def added_answer(question: dict, i: int) -> dict:
        """Lead ``i``'s answer to a question added at run time, as a ``field_data`` entry:
        one of its options in turn (two for every third lead), else a text."""
        options = [o["key"] for o in question.get("options") or ()]
        if not options:
            return {"name": question["key"], "values": [f"answer {i}"]}
        picked = [options[i % len(options)]]
        if i % 3 == 0 and len(options) > 1:
            picked.append(options[(i + 1) % len(options)])
        return {"name": question["key"], "values": picked}

    # -- leads ----------------------------------------------------------------------------
    def find_lead(self, lead_id: str) -> tuple[Form, int, dict | None] | None:
        if not lead_id.isdigit() or len(lead_id) != 16:
            return None
        value = int(lead_id) - _LEAD_BASE
        if value < 0:
            return None
        code, scrambled = divmod(value, _LEAD_SPAN)
        ordinal = (code - self._code_offset) % 10**5
        if ordinal >= len(self.forms_by_ordinal):
            return None
        form = self.forms_by_ordinal[ordinal]
        i = ((scrambled - form.salt) * _LEAD_MULT_INV) % _LEAD_SPAN
        if i < form.count:
            return form, i, None
        with self._lock:
            for lead in form.added:
                if lead["id"] == lead_id:
                    return form, i, lead
        return None

    def lead_origin(self, lead_id: str) -> tuple[Form, int, str | None] | None:
        """A lead's form, Unix creation time and ad id (None when organic), or None."""
        found = self.find_lead(lead_id)
        if found is None:
            return None
        form, i, added = found
        if added is not None:
            return form, added["_ct"], added.get("ad_id")
        variant = i % VARIANTS
        return form, form.created_at(i), None if variant == ORGANIC else form.ads[variant].id

    def delete_lead(self, lead_id: str) -> bool:
        """Remove a lead added at run time; False when there is none with that id."""
        found = self.find_lead(lead_id)
        if found is None or found[2] is None:
            return False
        form = found[0]
        with self._lock:
            for pos, lead in enumerate(form.added):
                if lead["id"] == lead_id:
                    del form.added[pos]
                    del form.added_keys[pos]
                    return True
        return False

    def variant(self, i: int) -> int:
        return i % VARIANTS

    @staticmethod
    def lead_values(form: Form, i: int) -> tuple[str, ...]:
        """Every per-lead string of lead ``i``, in :data:`_VALUE_SLOTS` order (the hot path)."""
        h = _mix(i, form.salt)
        n = form.count
        if n:
            step = form.span // n
            t = form.start + (i * form.span) // n + (h % step if step > 1 else 0)
        else:
            t = form.start
        fn = h % len(FIRST_NAMES)
        ln = (h >> 5) % len(LAST_NAMES)
        local = (_EMAIL_LOCAL_CAPS if h & 0x400 else _EMAIL_LOCAL)[fn][ln]
        if (h >> 11) & 3 == 0:
            phone = "+44 7700 900%03d" % (h % 1000)  # noqa: UP031 - hot path
        else:
            phone = "+1650555%04d" % (h % 10000)  # noqa: UP031
        city, zp = _CITIES_JS[(h >> 13) % len(CITIES)]
        return (
            str(_LEAD_BASE + form.code * _LEAD_SPAN + (i * _LEAD_MULT + form.salt) % _LEAD_SPAN),
            time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(t)),
            PLATFORMS[(i // VARIANTS) % len(PLATFORMS)],
            _NAMES_JS[fn][ln],
            f"{local}{i % 1000}@example.com",
            phone,
            city,
            zp,
            _PRODUCTS_JS[1 + (h >> 16) % 15],
            _BUDGETS_JS[(h >> 20) % len(BUDGETS)],
            CONTACT_TIMES[(h >> 22) % len(CONTACT_TIMES)],
            STORES[(h >> 24) % len(STORES)],
            _CDR_JS[(h >> 26) & 3],
        )

    def _template(
        self, form: Form, variant: int, fields: tuple[str, ...], with_ads: bool
    ) -> _Compiled:
        """A %-template of the lead's JSON for these fields, and which values fill it."""
        cache_key = (form.ordinal, variant, fields, with_ads)
        cached = self._templates.get(cache_key)
        if cached is not None:
            return cached
        organic = variant == ORGANIC
        ad = None if organic else form.ads[variant]
        parts: list[str] = []
        picks: list[int] = []
        for name in fields:
            if name == "id":
                parts.append('"id":"%s"')
                picks.append(0)
            elif name == "created_time":
                parts.append('"created_time":"%s"')
                picks.append(1)
            elif name == "form_id":
                parts.append(f'"form_id":"{form.id}"')
            elif name in AD_FIELDS:
                if ad is not None and with_ads:
                    parts.append(_js(name) + ":" + _js(ad.fields()[name]).replace("%", "%%"))
            elif name == "is_organic":
                parts.append('"is_organic":' + ("true" if organic else "false"))
            elif name == "platform":
                parts.append('"platform":"%s"')
                picks.append(2)
            elif name == "field_data":
                parts.append('"field_data":' + _FD_TEMPLATE)
                picks.extend(range(3, 12))
            elif name == "custom_disclaimer_responses":
                parts.append('"custom_disclaimer_responses":%s')
                picks.append(12)
            # partner_name, retailer_item_id, home_listing, vehicle, post,
            # post_submission_check_result: empty for these leads, so left out like Meta does.
        if len(picks) == 1:
            only = picks[0]
            getter: Callable[[tuple[str, ...]], tuple[str, ...]] = lambda v: (v[only],)  # noqa: E731
        else:
            getter = operator.itemgetter(*picks) if picks else (lambda v: ())
        compiled = ("{" + ",".join(parts) + "}", getter)
        self._templates[cache_key] = compiled
        return compiled

    def render_lead(self, form: Form, i: int, fields: tuple[str, ...], with_ads: bool) -> str:
        template, getter = self._template(form, i % VARIANTS, fields, with_ads)
        return template % getter(self.lead_values(form, i))

    def render_many(
        self, form: Form, indices: list[int], fields: tuple[str, ...], with_ads: bool
    ) -> list[str]:
        compiled = [self._template(form, v, fields, with_ads) for v in range(VARIANTS)]
        values = self.lead_values
        out: list[str] = []
        append = out.append
        for i in indices:
            template, getter = compiled[i % VARIANTS]
            append(template % getter(values(form, i)))
        return out

    @staticmethod
    def public(lead: dict) -> dict:
        return {k: v for k, v in lead.items() if not k.startswith("_")}

    @staticmethod
    def render_added(lead: dict, fields: tuple[str, ...], with_ads: bool) -> str:
        return _js({k: lead[k] for k in fields if k in lead and (with_ads or k not in AD_FIELDS)})

    def add_leads(
        self,
        form_id: str,
        count: int,
        created_time: int | None = None,
        organic: bool | None = None,
        field_data: list | None = None,
        custom_disclaimer_responses: list | None = None,
        test: bool = False,
    ) -> list[dict]:
        """Leads that arrive at run time; returns them (every field).

        ``test`` marks test leads (``POST /{form}/test_leads``), which ``GET`` lists again.
        """
        form = self.form_by_id[form_id]
        out = []
        stored = []
        with self._lock:
            for _ in range(count):
                i = form.count + form.added_made
                form.added_made += 1
                # Default: now, and never older than the generated leads (a fixed ``now``).
                ct = int(created_time if created_time is not None else max(time.time(), self.now))
                lead = json.loads(self.render_lead(form, i, LEAD_FIELDS, True))
                lead["created_time"] = time_string(ct)
                if organic:
                    for name in AD_FIELDS:
                        lead.pop(name, None)
                    lead["is_organic"] = True
                if field_data is not None:
                    lead["field_data"] = field_data
                else:
                    lead["field_data"] += [self.added_answer(q, i) for q in form.added_questions]
                if custom_disclaimer_responses is not None:
                    lead["custom_disclaimer_responses"] = custom_disclaimer_responses
                lead["_index"] = i
                lead["_ct"] = ct
                lead["_test"] = test
                pos = bisect.bisect_left(form.added_keys, (ct, i))
                form.added_keys.insert(pos, (ct, i))
                form.added.insert(pos, lead)
                stored.append(lead)
                out.append(self.public(lead))
        if self.on_added is not None and stored:
            self.on_added(form, stored)
        return out

    def reset_added(self) -> None:
        """Forget what was added at run time: leads and questions."""
        with self._lock:
            for form in self.form_by_id.values():
                form.added.clear()
                form.added_keys.clear()
                form.added_made = 0
                form.added_questions.clear()

    def test_leads(self, form: Form) -> list[dict]:
        """The form's test leads, newest first (as stored dicts)."""
        with self._lock:
            return [lead for lead in reversed(form.added) if lead["_test"]]

    def added_snapshot(self, form: Form) -> list[dict]:
        with self._lock:
            return list(form.added)
