"""The offline provider's reading of phrases, on a hand-made vocabulary (no warehouse)."""

from __future__ import annotations

import pytest
from segops.ai.explanation import explain
from segops.ai.offline import DraftFailed, draft_offline
from segops.ai.vocabulary import EventTypeVocabulary, Key, Vocabulary
from segops.dsl import parse_definition

VOCABULARY = Vocabulary(
    event_types={
        "page_viewed": EventTypeVocabulary(
            "page_viewed", 100, {"path": Key("path", frozenset({"String"}), ("/pricing", "/blog"))}
        ),
        "order_placed": EventTypeVocabulary(
            "order_placed",
            10,
            {
                "total": Key("total", frozenset({"Double"})),
                "currency": Key("currency", frozenset({"String"}), ("USD", "EUR")),
            },
        ),
    },
    properties={
        "plan": Key("plan", frozenset({"String"}), ("free", "pro")),
        "email": Key("email", frozenset({"String"})),
        "seats": Key("seats", frozenset({"Int64"})),
    },
)


def draft(prompt: str) -> tuple[dict[str, object], list[str]]:
    drafted = draft_offline(prompt, VOCABULARY)
    parse_definition(drafted.definition)
    return drafted.definition, drafted.warnings


def test_but_not_a_group_negates_it_by_de_morgan() -> None:
    definition, _ = draft("on the pro plan but not (viewed pricing or placed an order)")
    assert definition == {
        "logic": "AND",
        "conditions": [
            {"type": "user_property", "property": "plan", "operator": "eq", "value": "pro"},
            {
                "logic": "AND",
                "conditions": [
                    {
                        "type": "event_count",
                        "event_type": "page_viewed",
                        "operator": "eq",
                        "value": 0,
                        "where": [{"property": "path", "operator": "eq", "value": "/pricing"}],
                    },
                    {"type": "event_count", "event_type": "order_placed", "operator": "eq", "value": 0},
                ],
            },
        ],
    }


NO_PRICING = {
    "type": "event_count",
    "event_type": "page_viewed",
    "operator": "eq",
    "value": 0,
    "where": [{"property": "path", "operator": "eq", "value": "/pricing"}],
}


@pytest.mark.parametrize(
    ("prompt", "first"),
    [
        ("not (viewed pricing or placed an order)", NO_PRICING),
        ("never (viewed pricing or placed an order)", NO_PRICING),
        (
            "users who are not (on the pro plan or placed an order)",
            {"type": "user_property", "property": "plan", "operator": "neq", "value": "pro"},
        ),
    ],
)
def test_a_negation_before_a_group_negates_the_whole_group(prompt: str, first: dict[str, object]) -> None:
    # never the group itself with its "not" dropped: that would select the very users the prompt excludes
    definition, _ = draft(prompt)
    no_order = {"type": "event_count", "event_type": "order_placed", "operator": "eq", "value": 0}
    assert definition == {"logic": "AND", "conditions": [first, no_order]}


def test_an_event_type_is_found_by_the_words_of_its_own_name() -> None:
    vocabulary = Vocabulary(
        event_types={**VOCABULARY.event_types, "webinar_attended": EventTypeVocabulary("webinar_attended", 5, {})},
        properties=VOCABULARY.properties,
    )
    drafted = draft_offline("attended webinars twice", vocabulary)
    assert drafted.definition["conditions"] == [
        {"type": "event_count", "event_type": "webinar_attended", "operator": "gte", "value": 2}
    ]
    # and the words that named it are not reported as ignored
    assert not [w for w in drafted.warnings if w.startswith("ignored")]
    assert not [w for w in draft("users who have not placed an order")[1] if w.startswith("ignored")]


def test_assumptions_and_unused_words_are_warnings_never_silent() -> None:
    definition, warnings = draft("bought something recently and loves jazz")
    assert definition["conditions"] == [
        {"type": "event_count", "event_type": "order_placed", "operator": "gte", "value": 1, "window_days": 30.0}
    ]
    assert any("recently" in w for w in warnings)
    assert any("'loves jazz'" in w for w in warnings)


def test_negations_without_an_exact_opposite_say_so() -> None:
    _, warnings = draft("seats not above 5")
    assert any("match neither" in w for w in warnings)
    definition, warnings = draft('email does not contain "gmail"')
    assert definition["conditions"][0]["operator"] == "contains"
    assert any("cannot express 'does not contain'" in w for w in warnings)


def test_values_keep_their_spelling_and_stay_data() -> None:
    # hostile text is only ever a value: the compiler binds it as a parameter
    definition, _ = draft('email contains "\'); DROP TABLE events; --"')
    [condition] = definition["conditions"]
    assert condition == {
        "type": "user_property",
        "property": "email",
        "operator": "contains",
        "value": "'); DROP TABLE events; --",
    }


def test_amounts_pick_metric_currency_and_window() -> None:
    definition, _ = draft("average order above 40 euros in the past 2 weeks")
    assert definition["conditions"] == [
        {
            "type": "monetary",
            "event_type": "order_placed",
            "property": "total",
            "metric": "avg",
            "operator": "gt",
            "value": 40,
            "window_days": 14.0,
            "where": [{"property": "currency", "operator": "eq", "value": "EUR"}],
        }
    ]
    assert explain(parse_definition(definition)) == [
        'average of order_placed.total where currency is "EUR" is greater than 40 in the last 14 days'
    ]


@pytest.mark.parametrize("prompt", ["hello there", "(", "visited", "(" * 300 + "pro" + ")" * 300])
def test_nothing_usable_is_a_draft_failure(prompt: str) -> None:
    with pytest.raises(DraftFailed):
        draft_offline(prompt, Vocabulary({}, {}))


def test_activity_without_a_window_is_the_last_30_days_with_a_warning() -> None:
    # as "recently" is: a marketer's "inactive users" is drafted, not refused
    definition, warnings = draft("inactive users")
    assert definition == draft("inactive for 30 days")[0]
    assert any("no time window; read it as the last 30 days" in w for w in warnings)
