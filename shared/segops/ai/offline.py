"""The offline draft provider: a lark grammar reads the prompt's logic and typed phrases; each clause
is grounded in the tenant's vocabulary. Deterministic, no network, no model weights.

The grammar splits the prompt into clauses joined by and / or / but not / either … or … /
parentheses, and lexes inside a clause the phrases that carry meaning (comparisons, numbers,
amounts, time windows, "… ago", negations). A clause then becomes one condition: a user property
when its words name a property key or a known property value, otherwise an event condition on the
tenant event type whose name shares the most concepts with the clause (count, amount or recency by
the phrases present), with payload filters for words that are known values of that event's keys.
Every word that was not used and every assumption made becomes a warning.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lark import Lark, Token, Transformer, UnexpectedInput

from segops.ai.vocabulary import EventTypeVocabulary, Key, Vocabulary
from segops.dsl import MAX_DEPTH

_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
    "thirty": 30,
    "fifty": 50,
    "hundred": 100,
}
_NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?k?"
_NUMWORD = r"(?:one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|fifteen|twenty|thirty|fifty|hundred)"
_UNIT = r"(?:hour|day|week|month|year|quarter)s?"


# Words that carry no condition of their own.
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "by",
        "for",
        "from",
        "with",
        "who",
        "whom",
        "that",
        "which",
        "whose",
        "have",
        "has",
        "had",
        "having",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "do",
        "does",
        "did",
        "done",
        "users",
        "user",
        "people",
        "persons",
        "person",
        "customers",
        "customer",
        "everyone",
        "anyone",
        "someone",
        "those",
        "them",
        "they",
        "their",
        "there",
        "all",
        "any",
        "some",
        "show",
        "me",
        "find",
        "give",
        "get",
        "list",
        "segment",
        "audience",
        "who've",
        "they've",
        "i",
        "want",
        "we",
        "visitors",
        "members",
        "member",
        "accounts",
        "account",
        "shoppers",
        "shopper",
        "subscribers",
        "subscriber",
        "contacts",
        "contact",
        "also",
        "s",
        "'s",
        "it",
        "its",
        "time",
        "times",
        "total",
        "overall",
        "ever",
        "least",
        "last",
        "within",
        "set",
        "value",
        "flag",
        "marked",
        "as",
        "made",
        "make",
        "makes",
        "making",
        "more",
        "than",
        "currently",
        "current",
        "still",
        "already",
        "our",
        "my",
        "your",
        "this",
        "these",
        "than",
        "then",
        "into",
        "per",
        "each",
        "every",
        "one",
        "ones",
    ]
)

# Word → concept; event type names are read with the same table, so both sides meet on concepts.
_CONCEPTS: dict[str, str] = {}
for _concept, _words in {
    "purchase": "order orders ordered ordering purchase purchases purchased purchasing buy buys bought buying buyer "
    "buyers checkout checkouts transaction transactions spent spend spends spending paid pay pays payment "
    "payments revenue sale sales aov ltv",
    "view": "view views viewed viewing visit visits visited visiting saw seen see sees browse browsed browsing "
    "look looked looking read land landed",
    "page": "page pages url site website",
    "open": "open opens opened opening",
    "email": "email emails e-mail e-mails mail mails newsletter newsletters",
    "click": "click clicks clicked clicking tap tapped",
    "login": "login logins log logged logging signin",
    "signup": "signup signups registered register registration joined",
    "cart": "cart carts basket baskets",
    "add": "add adds added adding",
    "product": "product products item items sku",
    "session": "session sessions",
    "refund": "refund refunds refunded return returns returned",
    "subscription": "subscription subscriptions subscribe subscribed subscribing",
    "trial": "trial trials",
    "search": "search searches searched searching",
    "app": "app apps",
    "push": "push notification notifications",
    "review": "review reviews reviewed rate rated rating",
    "share": "share shares shared sharing referral referred refer invited invite",
    "cancel": "cancel cancels cancelled canceled cancellation churned",
    "upgrade": "upgrade upgrades upgraded",
    "download": "download downloads downloaded",
    "start": "start starts started",
    "video": "video videos watch watched watching",
}.items():
    for _word in _words.split():
        _CONCEPTS[_word] = _concept
# Phrases of two words with one concept ("logged in", "signed up") are joined before lookup.
_BIGRAMS = {
    ("log", "in"): "login",
    ("logged", "in"): "login",
    ("logs", "in"): "login",
    ("sign", "in"): "login",
    ("signed", "in"): "login",
    ("signs", "in"): "login",
    ("sign", "up"): "signup",
    ("signed", "up"): "signup",
    ("signs", "up"): "signup",
    ("check", "out"): "purchase",
    ("checked", "out"): "purchase",
}
# Values written the way people say them ("Germany") where the data holds a code ("DE").
_VALUE_ALIASES = {
    "germany": "de",
    "german": "de",
    "germans": "de",
    "france": "fr",
    "french": "fr",
    "uk": "gb",
    "britain": "gb",
    "british": "gb",
    "england": "gb",
    "usa": "us",
    "america": "us",
    "american": "us",
    "americans": "us",
    "spain": "es",
    "spanish": "es",
    "italy": "it",
    "italian": "it",
    "canada": "ca",
    "canadian": "ca",
}
# Words that name a property key by another word ("500 employees" → company_size).
_KEY_ALIASES = {"employees": "size", "employee": "size", "headcount": "size", "staff": "size", "tier": "plan"}
_ACTIVITY_WORDS = frozenset({"active", "engaged", "activity", "seen", "online", "inactive", "dormant", "lapsed"})
_INACTIVE_WORDS = frozenset({"inactive", "dormant", "lapsed"})
_METRIC_WORDS = {
    "average": "avg",
    "avg": "avg",
    "aov": "avg",
    "typical": "avg",
    "mean": "avg",
    "largest": "max",
    "biggest": "max",
    "highest": "max",
    "max": "max",
    "maximum": "max",
    "single": "max",
    "smallest": "min",
    "lowest": "min",
    "min": "min",
    "cheapest": "min",
}
_MONEY_WORDS = frozenset(
    {"spent", "spend", "spends", "spending", "revenue", "value", "worth", "paid", "ltv", "aov", "amount"}
)
_CURRENCY_WORDS = {"euro": "EUR", "euros": "EUR", "eur": "EUR", "pound": "GBP", "pounds": "GBP", "gbp": "GBP"}
_COMPARATORS = {
    "at least": "gte",
    "no less than": "gte",
    "not less than": "gte",
    "minimum": "gte",
    "minimum of": "gte",
    "more than": "gt",
    "greater than": "gt",
    "higher than": "gt",
    "bigger than": "gt",
    "larger than": "gt",
    "over": "gt",
    "above": "gt",
    "exceed": "gt",
    "exceeds": "gt",
    "exceeding": "gt",
    "at most": "lte",
    "no more than": "lte",
    "not more than": "lte",
    "maximum": "lte",
    "maximum of": "lte",
    "up to": "lte",
    "less than": "lt",
    "fewer than": "lt",
    "lower than": "lt",
    "smaller than": "lt",
    "under": "lt",
    "below": "lt",
    "exactly": "eq",
    "precisely": "eq",
    "only": "eq",
    ">=": "gte",
    "<=": "lte",
    ">": "gt",
    "<": "lt",
    "=": "eq",
    "or more": "gte",
    "or above": "gte",
    "or higher": "gte",
    "or greater": "gte",
    "or less": "lte",
    "or fewer": "lte",
    "or below": "lte",
    "or lower": "lte",
}
# Longest first: "no more than" must win over "more than".
_COMPARATOR = "|".join(
    rf"{re.escape(phrase)}\b" if phrase[-1].isalpha() else re.escape(phrase)
    for phrase in sorted(_COMPARATORS, key=len, reverse=True)
)
_DURATION = "|".join(
    [
        rf"(?:(?:in|within|during|over|for|from|since)\s+)?(?:the\s+)?(?:last|past|previous|recent)\s+"
        rf"(?:(?:{_NUM}|{_NUMWORD})\s*)?{_UNIT}\b",
        r"(?:this|last)\s+(?:week|month|year|quarter)\b",
        rf"(?:in|for|within|over)\s+(?:{_NUM}|{_NUMWORD}|an?)\s*{_UNIT}\b",
        r"today\b|yesterday\b|recently\b|lately\b",
    ]
)
_NEGATION = (
    r"(?:never|not|no|none|without|zero|non|haven'?t|hasn'?t|didn'?t|don'?t|doesn'?t|isn'?t|aren'?t|wasn'?t"
    r"|weren'?t)\b"
)

GRAMMAR = rf"""
start: expr (_WHO expr)*
expr: conj (_COMMA? _OR conj)*
conj: part ((and_join | not_join) part)*
and_join: _COMMA? (_AND | _BUT) | _COMMA
not_join: _COMMA? _BUT_NOT
part: clause? _LPAR expr _RPAR clause? -> group
    | _EITHER part (_COMMA? _OR part)+ -> either
    | clause
clause: (QUOTED | BETWEEN | MONEY | PLUS | AGO | DURATION | TIMES | COMPARATOR | NEG | CONTAINS | NUMBER | WORD)+

_LPAR: "("
_RPAR: ")"
_COMMA: /[,;]/
_BUT_NOT.6: /(?:but|and|yet)\s+(?:not|never)\b|except(?:\s+for)?\b|excluding\b|other than\b/
_BUT.3: /(?:but|yet|while|whereas)\b/
_AND.3: /(?:and|as well as|plus)\b|&/
_OR.3: /or\b/
_EITHER.3: /either\b/
_WHO.3: /(?:who|that|which|whose)\b/
QUOTED.7: /"[^"]*"/
BETWEEN.7: /between\s+[$€£]?{_NUM}\s+(?:and|to)\s+[$€£]?{_NUM}/
MONEY.6: /[$€£]\s?{_NUM}|{_NUM}\s?(?:usd|eur|gbp|dollars?|euros?|bucks|pounds?)\b/
PLUS.6: /{_NUM}\s?\+/
AGO.6: /(?:(?:more than|over|at least|less than|under|within)\s+)?(?:{_NUM}|{_NUMWORD}|an?)?\s*{_UNIT}\s+ago\b/
DURATION.5: /{_DURATION}/
TIMES.4: /(?:once|twice|thrice)\b/
COMPARATOR.4: /{_COMPARATOR}/
NEG.3: /{_NEGATION}/
CONTAINS.3: /(?:contains?|containing|includes?|including)\b/
NUMBER.2: /{_NUM}\b|{_NUMWORD}\b/
WORD: /[a-z0-9_\/.@#%'-]+/

%ignore /\s+/
%ignore /[?!:]/
"""

_PARSER = Lark(GRAMMAR, parser="earley", lexer="basic", ambiguity="resolve")

_NEGATED = {"eq": "neq", "neq": "eq", "gt": "lte", "gte": "lt", "lt": "gte", "lte": "gt"}
_NEGATED_PROPERTY = {**_NEGATED, "in": "not_in", "not_in": "in", "exists": "not_exists", "not_exists": "exists"}
_UNIT_DAYS = {"hour": 1 / 24, "day": 1, "week": 7, "month": 30, "quarter": 90, "year": 365}


class DraftFailed(Exception):
    """Nothing in the prompt could be turned into a condition."""

    def __init__(self, message: str, warnings: list[str]) -> None:
        super().__init__(message)
        self.warnings = warnings


@dataclass
class OfflineDraft:
    definition: dict[str, Any]
    warnings: list[str]


@dataclass(frozen=True)
class _Clause:
    tokens: tuple[Token, ...]
    text: str


@dataclass(frozen=True)
class _Logic:
    logic: str  # "AND" | "OR"
    parts: tuple[tuple[bool, Any], ...]  # (negated, _Clause | _Logic)


class _Tree(Transformer[Token, Any]):
    """The parse tree as nested `_Logic` of `_Clause`, with "but not" as negated parts."""

    def __init__(self, prompt: str) -> None:
        super().__init__()
        self.prompt = prompt

    def start(self, children: list[Any]) -> Any:
        """ "X who Y" restricts X by Y; in "vip users or users who spent …" it restricts only the last
        alternative, whose words name nobody in particular."""
        node = children[0]
        for restriction in children[1:]:
            if isinstance(node, _Logic) and node.logic == "OR" and _contentless(node.parts[-1][1]):
                node = _Logic("OR", (*node.parts[:-1], (False, restriction)))
            else:
                node = _Logic("AND", ((False, node), (False, restriction)))
        return node

    def expr(self, children: list[Any]) -> Any:
        return children[0] if len(children) == 1 else _Logic("OR", tuple((False, c) for c in children))

    def conj(self, children: list[Any]) -> Any:
        if len(children) == 1:
            return children[0]
        parts = [(False, children[0])]
        for joiner, part in zip(children[1::2], children[2::2], strict=True):
            parts.append((joiner == "not", part))
        return _Logic("AND", tuple(parts))

    def and_join(self, _: list[Any]) -> str:
        return "and"

    def not_join(self, _: list[Any]) -> str:
        return "not"

    def group(self, children: list[Any]) -> Any:
        # "big companies (size over 1000) that visited pricing": the text around a parenthesis joins it.
        # "not (A or B)", "are not (…)": a negation before it, with nothing else, negates the group.
        if len(children) > 1 and _only_negation(children[0]):
            return _Logic("AND", ((True, children[1]), *((False, c) for c in children[2:])))
        return children[0] if len(children) == 1 else _Logic("AND", tuple((False, c) for c in children))

    def either(self, children: list[Any]) -> Any:
        return _Logic("OR", tuple((False, c) for c in children))

    def part(self, children: list[Any]) -> Any:
        return children[0]

    def clause(self, tokens: list[Token]) -> _Clause:
        start, end = tokens[0].start_pos or 0, tokens[-1].end_pos or 0
        return _Clause(tuple(tokens), self.prompt[start:end])


def _only_negation(node: Any) -> bool:
    """A clause that only says "not" ("not", "are not", "who have never")."""
    return (
        isinstance(node, _Clause)
        and any(t.type == "NEG" for t in node.tokens)
        and all(t.type == "NEG" or (t.type == "WORD" and t.value in _STOPWORDS) for t in node.tokens)
    )


def _contentless(node: Any) -> bool:
    return isinstance(node, _Clause) and all(t.type == "WORD" and t.value in _STOPWORDS for t in node.tokens)


@dataclass
class _Context:
    vocabulary: Vocabulary
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)


def draft_offline(prompt: str, vocabulary: Vocabulary) -> OfflineDraft:
    """A DSL definition (as a dict) for `prompt`; raises `DraftFailed` when no condition came out."""
    text = prompt.replace("\u2019", "'").replace("\u201c", '"').replace("\u201d", '"')
    ctx = _Context(vocabulary)
    if _nesting(text) > MAX_DEPTH:
        raise DraftFailed(f"parentheses nest deeper than {MAX_DEPTH}", [])
    try:
        tree = _PARSER.parse(text.lower())
    except UnexpectedInput as exc:
        where = f" near position {exc.pos_in_stream}" if exc.pos_in_stream is not None else ""
        raise DraftFailed(f"could not read the prompt{where}", []) from None
    node = _node(ctx, _Tree(text).transform(tree), None)
    if node is None:
        raise DraftFailed("nothing in the prompt could be turned into a condition", ctx.warnings)
    definition = node if "logic" in node else {"logic": "AND", "conditions": [node]}
    return OfflineDraft(definition, ctx.warnings)


def _nesting(text: str) -> int:
    depth = deepest = 0
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        deepest = max(deepest, depth)
    return deepest


def _node(ctx: _Context, node: Any, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    if isinstance(node, _Clause):
        return _clause(ctx, node, previous)
    built: list[dict[str, Any]] = []
    last: dict[str, Any] | None = previous
    for negated, part in node.parts:
        condition = _node(ctx, part, last)
        if condition is None:
            continue
        last = condition
        built.append(_negate(ctx, condition) if negated else condition)
    if not built:
        return None
    if len(built) == 1:
        return built[0]
    logic = node.logic
    if logic == "OR" and _negative(built[0]) and all(_same_subject(built[0], c) for c in built[1:]):
        # "not in DE or US", "have not viewed pricing or docs": the later values continue the first
        # one's negation, and "not (A or B)" is "not A and not B". A value of the same property that
        # came out positive had no negation of its own ("plan is not pro or business").
        ctx.warn(f"read 'not … or …' as none of them ({_subject(built[0])})")
        built = [built[0], *(c if _negative(c) else _negate(ctx, c) for c in built[1:])]
        logic = "AND"
    return {"logic": logic, "conditions": built}


def _negative(condition: dict[str, Any]) -> bool:
    """A condition that says "not": a property that is not a value, an event that never happened."""
    if condition.get("type") == "user_property":
        return condition.get("operator") in ("neq", "not_in", "not_exists")
    return condition.get("type") == "event_count" and condition.get("operator") == "eq" and condition.get("value") == 0


def _subject(condition: dict[str, Any]) -> str:
    return str(condition.get("property") or condition.get("event_type"))


def _same_subject(first: dict[str, Any], other: dict[str, Any]) -> bool:
    """`other` names another value of `first`'s property, or another filter of its event type."""
    if first.get("type") != other.get("type") or _subject(first) != _subject(other):
        return False
    if other.get("type") == "user_property":
        return _negative(other) or other.get("operator") in ("eq", "in")
    return _negative(other)


# -- one clause ------------------------------------------------------------------------------------


@dataclass
class _Phrases:
    """The typed phrases of one clause."""

    words: list[str] = field(default_factory=list)
    quoted: list[str] = field(default_factory=list)
    comparisons: list[tuple[str, float, bool]] = field(default_factory=list)  # (operator, value, is_money)
    currencies: list[str] = field(default_factory=list)
    window_days: float | None = None
    ago: tuple[str, float] | None = None
    negated: bool = False
    contains: bool = False
    assumed: list[str] = field(default_factory=list)


def _phrases(clause: _Clause) -> _Phrases:
    found = _Phrases()
    pending: str | None = None  # a comparator waiting for its number
    tokens = list(clause.tokens)
    for index, token in enumerate(tokens):
        kind, value = token.type, str(token.value).strip()
        if kind == "COMPARATOR":
            operator = _COMPARATORS[re.sub(r"\s+", " ", value)]
            if value.startswith("or ") and found.comparisons:
                _, number, money = found.comparisons.pop()
                found.comparisons.append((operator, number, money))
            elif value == "only" and index + 1 < len(tokens) and tokens[index + 1].type == "COMPARATOR":
                continue
            else:
                pending = operator
        elif kind in ("NUMBER", "MONEY", "PLUS"):
            number = _number(value)
            money = kind == "MONEY"
            if money:
                currency = re.search(r"(usd|eur|gbp|euros?|pounds?)$", value)
                if currency and (code := _CURRENCY_WORDS.get(currency.group(1))):
                    found.currencies.append(code)
            if kind == "PLUS":
                found.comparisons.append(("gte", number, money))
            elif pending is not None:
                found.comparisons.append((pending, number, money))
            else:
                found.comparisons.append(("", number, money))
            pending = None
        elif kind == "BETWEEN":
            low, high = (_number(v) for v in re.findall(_NUM, value))
            money = bool(re.search(r"[$€£]", value))
            found.comparisons += [("gte", low, money), ("lte", high, money)]
        elif kind == "TIMES":
            times = {"once": 1.0, "twice": 2.0, "thrice": 3.0}[value]
            found.comparisons.append((pending or "", times, False))
            pending = None
        elif kind == "DURATION":
            found.window_days = _duration(value, found)
        elif kind == "AGO":
            operator = "gt"
            if re.match(r"(less than|under|within)", value):
                operator = "lt"
            elif value.startswith("at least"):
                operator = "gte"
            elif not re.match(r"(more than|over)", value):
                found.assumed.append(f"read '{value}' as more than {value.replace(' ago', '')} ago")
            found.ago = (operator, _days(value))
        elif kind == "NEG":
            found.negated = not found.negated
        elif kind == "CONTAINS":
            found.contains = True
        elif kind == "QUOTED":
            found.quoted.append(value.strip('"'))
        else:
            word = value.strip(".'")
            if word:
                found.words.append(word)
    return found


def _number(text: str) -> float:
    text = re.sub(r"[^0-9.k]|(?<=\d)\.(?=\D|$)", "", text.replace(",", ""))
    if text in _NUMBER_WORDS:
        return float(_NUMBER_WORDS[text])
    scale = 1000.0 if text.endswith("k") else 1.0
    digits = text.rstrip("k")
    return float(digits) * scale if digits else 1.0


def _days(text: str) -> float:
    unit = re.search(r"(hour|day|week|month|quarter|year)", text)
    assert unit is not None
    count = re.search(rf"{_NUM}|{_NUMWORD}|\ban?\b", text)
    amount = _number(count.group(0)) if count else 1.0
    if count and count.group(0) in _NUMBER_WORDS:
        amount = float(_NUMBER_WORDS[count.group(0)])
    return amount * _UNIT_DAYS[unit.group(1)]


def _duration(text: str, found: _Phrases) -> float:
    if text in ("recently", "lately"):
        found.assumed.append(f"read '{text}' as in the last 30 days")
        return 30.0
    if text == "today":
        return 1.0
    if text == "yesterday":
        found.assumed.append("read 'yesterday' as in the last 2 days")
        return 2.0
    days = _days(text)
    if re.search(r"month|quarter|year", text):
        found.assumed.append(f"read '{text}' as {_format(days)} days")
    return days


def _format(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _clause(ctx: _Context, clause: _Clause, previous: dict[str, Any] | None) -> dict[str, Any] | None:
    found = _phrases(clause)
    for note in found.assumed:
        ctx.warn(note)
    words = [w for w in found.words if w not in _STOPWORDS]
    matches = _property_matches(ctx.vocabulary, words, found)
    strong = [m for m in matches if m.strong]
    taken = {w for m in strong for w in m.words}
    rest = [w for w in words if w not in taken]
    concepts = _clause_concepts(rest)
    event, _ = _best_event(ctx.vocabulary, concepts)
    # A key named only in passing ("clicked an email") is the event's word, not a property condition.
    weak = [m for m in matches if not m.strong and (event is None or not (m.words & set(rest) & set(_CONCEPTS)))]
    chosen = _disjoint([*strong, *weak])
    taken = {w for m in chosen for w in m.words}
    rest = [w for w in words if w not in taken]
    # "average order above 50": an amount metric compared with a number is about money too.
    is_money = (
        any(money for _, _, money in found.comparisons)
        or bool(set(rest) & _MONEY_WORDS)
        or (bool(set(rest) & set(_METRIC_WORDS)) and bool(found.comparisons) and "purchase" in concepts)
    )
    if event is None and is_money:
        event = _money_event(ctx.vocabulary)
    if is_money and event is not None and event.amount_key() is None:
        event = _money_event(ctx.vocabulary) or event
    activity = event is None and bool(set(rest) & _ACTIVITY_WORDS)
    numeric = next((m for m in chosen if m.named and m.key.numeric and m.value is None), None)
    built: list[dict[str, Any]] = []
    for match in chosen:
        comparisons = found.comparisons if match is numeric or (numeric is None and event is None) else []
        condition = _property_condition(ctx, clause, found, rest, match, comparisons)
        if condition is not None:
            built.append(condition)
    negate_properties = found.negated and event is None and not activity
    if negate_properties:
        built = [_negate(ctx, c) for c in built]
    used = set(taken)
    if event is None and not activity and not built and previous is not None:
        inherited = _inherit(ctx, clause, found, rest, previous)
        if inherited is not None:
            return inherited
    if activity:
        made = _activity(ctx, clause, found, rest)
        if made is not None:
            built.append(made)
        used |= _ACTIVITY_WORDS
    elif event is not None:
        eventful = found if numeric is None else _without_comparisons(found)
        built.append(_event_condition(ctx, clause, eventful, rest, event, is_money, used))
    if not built:
        if words or found.comparisons or found.window_days is not None or found.ago is not None:
            ctx.warn(f"did not understand '{clause.text}'; it was left out")
        return None  # a clause of filler words only ("people" in "people that …") says nothing
    _leftovers(ctx, clause, words, used)
    return built[0] if len(built) == 1 else {"logic": "AND", "conditions": built}


def _without_comparisons(found: _Phrases) -> _Phrases:
    return _Phrases(**{**found.__dict__, "comparisons": []})


def _event_condition(
    ctx: _Context,
    clause: _Clause,
    found: _Phrases,
    words: list[str],
    event: EventTypeVocabulary,
    is_money: bool,
    used: set[str],
) -> dict[str, Any]:
    named = _event_concepts(event.name)
    used |= {w for w in words if w in _CONCEPTS or w in named or _singular(w) in named}
    used |= {w for pair in _BIGRAMS for w in pair if w in words}
    where, where_words = _where(event, [*words, *found.quoted], found.currencies)
    used |= where_words
    if is_money:
        condition = _monetary(ctx, clause, found, words, event, where)
        used |= set(_METRIC_WORDS) | _MONEY_WORDS
    elif found.ago is not None:
        operator, days = found.ago
        condition = {"type": "recency", "event_type": event.name, "operator": operator, "window_days": days}
        if where:
            ctx.warn(f"a recency condition cannot filter on payload values; ignored them in '{clause.text}'")
    else:
        condition = _event_count(ctx, clause, found, event, where)
    return _negate(ctx, condition) if found.negated else condition


def _inherit(
    ctx: _Context, clause: _Clause, found: _Phrases, words: list[str], previous: dict[str, Any]
) -> dict[str, Any] | None:
    """An elliptic clause: "plan is pro or business", "ordered in EUR or GBP"."""
    if previous.get("type") == "user_property" and words:
        key = ctx.vocabulary.properties.get(previous["property"])
        if key is not None:
            ctx.warn(f"read '{clause.text}' as another value of {key.name}")
            match = _PropertyMatch(key, None, set(), named=True, strong=True)
            condition = _property_condition(ctx, clause, found, words, match, found.comparisons)
            if condition is not None and previous["operator"] in ("neq", "not_in"):
                condition = _negate(ctx, condition)
            return condition
    event = ctx.vocabulary.event_types.get(str(previous.get("event_type")))
    if event is not None and previous.get("type") in ("event_count", "monetary"):
        where, where_words = _where(event, [*words, *found.quoted], found.currencies)
        if where:
            ctx.warn(f"read '{clause.text}' as another {event.name}")
            inherited = {**previous, "where": where}
            if found.window_days is not None:
                inherited["window_days"] = found.window_days
            _leftovers(ctx, clause, words, where_words)
            return inherited
    return None


def _concepts(words: Sequence[str]) -> set[str]:
    concepts = {_CONCEPTS[w] for w in words if w in _CONCEPTS}
    concepts |= {c for (a, b), c in _BIGRAMS.items() if _adjacent(words, a, b)}
    return concepts


def _clause_concepts(words: Sequence[str]) -> set[str]:
    """What a clause's words can match in an event type's name (`_event_concepts`): their concepts,
    and each other word as itself and singular ("attended webinars" names `webinar_attended`)."""
    plain = [w for w in words if w not in _CONCEPTS and w not in _STOPWORDS]
    return _concepts(words) | set(plain) | {_singular(w) for w in plain}


def _adjacent(words: Sequence[str], first: str, second: str) -> bool:
    return any(a == first and b == second for a, b in itertools.pairwise(words))


def _event_concepts(name: str) -> set[str]:
    parts = [p for p in name.split("_") if p]
    return _concepts(parts) | ({p for p in parts if p not in _CONCEPTS and p not in _STOPWORDS})


def _best_event(vocabulary: Vocabulary, concepts: set[str]) -> tuple[EventTypeVocabulary | None, int]:
    best: tuple[EventTypeVocabulary | None, int] = (None, 0)
    for event in vocabulary.event_types.values():  # by descending frequency: ties go to the commoner one
        score = len(concepts & _event_concepts(event.name))
        if score > best[1]:
            best = (event, score)
    return best


def purchase_events(vocabulary: Vocabulary) -> list[EventTypeVocabulary]:
    """Event types named like a purchase ("order_placed", "checkout_completed") that carry an amount,
    most frequent first."""
    return [
        event
        for event in vocabulary.event_types.values()
        if "purchase" in _event_concepts(event.name) and event.amount_key() is not None
    ]


def _money_event(vocabulary: Vocabulary) -> EventTypeVocabulary | None:
    return next(iter(purchase_events(vocabulary)), None)


def _key_words(name: str) -> list[str]:
    return [p for p in re.split(r"[_\-.\s]+|(?<=[a-z])(?=[A-Z])", name) if p and p.lower()]


def _singular(word: str) -> str:
    if word.endswith("ies") and len(word) > 4:
        return word[:-3] + "y"
    if word.endswith("s") and not word.endswith("ss") and len(word) > 3:
        return word[:-1]
    return word


def _matches_value(word: str, value: str) -> bool:
    folded = value.lower()
    word = _VALUE_ALIASES.get(word, word)
    return word == folded or (len(word) > 2 and folded.strip("/") == word)


@dataclass
class _PropertyMatch:
    key: Key
    value: str | None
    words: set[str]
    named: bool
    strong: bool


def _property_matches(vocabulary: Vocabulary, words: list[str], found: _Phrases) -> list[_PropertyMatch]:
    """Properties the clause names (all words of the key) or gives a known value of."""
    expanded = set(words) | {_singular(w) for w in words} | {_KEY_ALIASES[w] for w in words if w in _KEY_ALIASES}
    matches = []
    for key in vocabulary.properties.values():
        parts = [p.lower() for p in _key_words(key.name)]
        named = bool(parts) and all(p in expanded for p in parts)
        used = {w for w in words if {w, _singular(w), _KEY_ALIASES.get(w)} & set(parts)} if named else set()
        value = None
        for word in [*words, *found.quoted]:
            value = next((v for v in key.values if _matches_value(word.lower(), v)), None)
            if value is not None:
                used.add(word)
                break
        if not named and value is None:
            continue
        signal = found.contains or (key.numeric and bool(found.comparisons)) or key.boolean
        matches.append(_PropertyMatch(key, value, used, named, strong=value is not None or signal))
    return sorted(matches, key=lambda m: (-int(m.value is not None) - int(m.named), m.key.name))


def _disjoint(matches: list[_PropertyMatch]) -> list[_PropertyMatch]:
    chosen: list[_PropertyMatch] = []
    for match in matches:
        if all(not (match.words & other.words) for other in chosen):
            chosen.append(match)
    return chosen


def _property_condition(
    ctx: _Context,
    clause: _Clause,
    found: _Phrases,
    words: list[str],
    match: _PropertyMatch,
    comparisons: list[tuple[str, float, bool]],
) -> dict[str, Any] | None:
    key = match.key
    condition: dict[str, Any] = {"type": "user_property", "property": key.name}
    free = [w for w in [*found.quoted, *words] if w not in match.words and w not in _CONCEPTS]
    if found.contains:
        if not free:
            ctx.warn(f"'contains' without a value in '{clause.text}'; it was left out")
            return None
        condition.update(operator="contains", value=_original(clause, free[-1]))
        match.words.add(free[-1])
    elif match.value is not None:
        condition.update(operator="eq", value=match.value)
    elif comparisons and (key.numeric or not key.values):
        operator, number, _ = comparisons[0]
        condition.update(operator=operator or "eq", value=_int_or_float(number))
        if len(comparisons) > 1:
            second, other, _ = comparisons[1]
            both = [condition, {**condition, "operator": second or "eq", "value": _int_or_float(other)}]
            return {"logic": "AND", "conditions": both}
    elif key.boolean:
        condition.update(operator="eq", value=True)
    elif free and not match.named:
        return None
    elif free and key.values is not None and _is_value_position(words, match):
        value_word = free[-1]
        condition.update(operator="eq", value=_original(clause, value_word))
        match.words.add(value_word)
        if key.values:
            ctx.warn(f"'{value_word}' is not a value seen for {key.name}; matched it exactly as written")
    else:
        condition.update(operator="exists")
    return condition


def _is_value_position(words: list[str], match: _PropertyMatch) -> bool:
    """ "country is FR": a free word after the key is its value."""
    positions = [i for i, w in enumerate(words) if w in match.words]
    return bool(positions) and any(i > max(positions) for i, w in enumerate(words) if w not in match.words)


def _original(clause: _Clause, word: str) -> str:
    """The word as the prompt spelled it (the grammar reads a lowercased copy)."""
    at = clause.text.lower().find(word)
    return clause.text[at : at + len(word)] if at >= 0 else word


def _int_or_float(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _where(
    event: EventTypeVocabulary, words: list[str], currencies: list[str]
) -> tuple[list[dict[str, Any]], set[str]]:
    filters: list[dict[str, Any]] = []
    used: set[str] = set()
    for key in event.keys.values():
        for word in words:
            code = _CURRENCY_WORDS.get(word.lower())
            candidates = [word.lower(), *([code.lower()] if code else [])]
            matched = next((v for v in key.values for c in candidates if _matches_value(c, v)), None)
            if matched is not None and word not in used:
                filters.append({"property": key.name, "operator": "eq", "value": matched})
                used.add(word)
                break
    for code in currencies:
        currency = next((k for k in event.keys.values() if code in k.values), None)
        if currency is not None and not any(f["property"] == currency.name for f in filters):
            filters.append({"property": currency.name, "operator": "eq", "value": code})
    return filters, used


def _event_count(
    ctx: _Context, clause: _Clause, found: _Phrases, event: EventTypeVocabulary, where: list[dict[str, Any]]
) -> dict[str, Any]:
    condition: dict[str, Any] = {"type": "event_count", "event_type": event.name}
    counts = [(op, value) for op, value, money in found.comparisons if not money]
    if counts:
        operator, value = counts[0]
        if not operator:
            operator = "gte"
            ctx.warn(f"read '{_format(value)}' in '{clause.text}' as at least {_format(value)}")
        condition.update(operator=operator, value=int(value))
    else:
        condition.update(operator="gte", value=1)
    if found.window_days is not None:
        condition["window_days"] = found.window_days
    if where:
        condition["where"] = where
    if len(counts) > 1:
        second, other = counts[1]
        return {
            "logic": "AND",
            "conditions": [condition, {**condition, "operator": second or "lte", "value": int(other)}],
        }
    return condition


def _monetary(
    ctx: _Context,
    clause: _Clause,
    found: _Phrases,
    words: list[str],
    event: EventTypeVocabulary,
    where: list[dict[str, Any]],
) -> dict[str, Any]:
    key = event.amount_key()
    amounts = found.comparisons
    if key is None or not amounts:
        ctx.warn(f"no amount to compare in '{clause.text}'; counted {event.name} instead")
        return _event_count(ctx, clause, found, event, where)
    metric = next((_METRIC_WORDS[w] for w in words if w in _METRIC_WORDS), "sum")
    operator, value, _ = amounts[0]
    if not operator:
        operator = "gte"
        ctx.warn(f"read '{_format(value)}' in '{clause.text}' as at least {_format(value)}")
    condition: dict[str, Any] = {
        "type": "monetary",
        "event_type": event.name,
        "property": key.name,
        "metric": metric,
        "operator": operator,
        "value": _int_or_float(value),
    }
    if found.window_days is not None:
        condition["window_days"] = found.window_days
    if where:
        condition["where"] = where
    if len(amounts) > 1:
        second, other, _ = amounts[1]
        return {"logic": "AND", "conditions": [condition, {**condition, "operator": second or "lte", "value": other}]}
    return condition


def _activity(ctx: _Context, clause: _Clause, found: _Phrases, words: list[str]) -> dict[str, Any] | None:
    """ "Active" = did any of the tenant's event types; "inactive" is its negation. Without a window,
    the last 30 days (as "recently")."""
    days = found.window_days if found.window_days is not None else found.ago[1] if found.ago else 30.0
    if found.window_days is None and found.ago is None:
        ctx.warn(f"'{clause.text}' names no time window; read it as the last 30 days")
    ctx.warn(f"read activity in '{clause.text}' as any event ({', '.join(ctx.vocabulary.event_types)})")
    any_event: dict[str, Any] = {
        "logic": "OR",
        "conditions": [
            {"type": "recency", "event_type": name, "operator": "lt", "window_days": days}
            for name in ctx.vocabulary.event_types
        ],
    }
    inactive = bool(set(words) & _INACTIVE_WORDS) or (found.ago is not None and found.ago[0] in ("gt", "gte"))
    _leftovers(ctx, clause, words, set(_ACTIVITY_WORDS))
    return _negate(ctx, any_event) if inactive != found.negated else any_event


def _leftovers(ctx: _Context, clause: _Clause, words: list[str], used: set[str]) -> None:
    ignored = [w for w in words if w not in used and w not in _STOPWORDS and w not in _CONCEPTS]
    if ignored:
        ctx.warn(f"ignored {', '.join(repr(w) for w in ignored)} in '{clause.text}'")


def _negate(ctx: _Context, node: dict[str, Any]) -> dict[str, Any]:
    """The condition for "not …": groups by De Morgan, leaves by their opposite operator."""
    if "logic" in node:
        return {
            "logic": "OR" if node["logic"] == "AND" else "AND",
            "conditions": [_negate(ctx, c) for c in node["conditions"]],
        }
    kind, operator = node["type"], node["operator"]
    if kind == "user_property":
        if operator == "contains":
            ctx.warn(f"cannot express 'does not contain' for {node['property']}; kept 'contains'")
            return node
        if operator in ("gt", "gte", "lt", "lte"):
            ctx.warn(f"users without {node['property']} match neither '{operator}' nor its opposite")
        return {**node, "operator": _NEGATED_PROPERTY[operator]}
    if kind == "monetary" and node["metric"] in ("avg", "min", "max"):
        ctx.warn(f"users without any {node['event_type']} match neither the amount condition nor its opposite")
    if kind == "event_count" and operator == "gte" and node["value"] == 1:
        return {**node, "operator": "eq", "value": 0}
    return {**node, "operator": _NEGATED[operator]}
