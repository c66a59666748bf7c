"""The explorer's view lives in its address: every state goes to a query string and back
unchanged, a value the explorer cannot use is named in a notice, and the window a state asks
for is computed from its instant, never from a hidden clock."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings, strategies as st

from data.explorer import state
from data.explorer.state import Mark, Notice, State

TZ = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
# Monday 2026-11-23 10:00 in Shanghai.
NOW = datetime(2026, 11, 23, 2, 0, 27, tzinfo=UTC)


def site(*args) -> datetime:
    return datetime(*args, tzinfo=TZ).astimezone(UTC)


ROUND_TRIPS = [
    State(),
    State(lang="en", window="30d", by="location"),
    State(window="custom", since=site(2026, 11, 1, 8), until=site(2026, 11, 15, 20, 30),
          at=site(2026, 11, 16, 8)),
    State(filters=(("department", ("QA", "MNT")), ("line", ("L1", "-")),
                   ("cause", ("供应商A交货延迟", "a|b%c&d=e", "with space", "100%")))),
    State(marks=(Mark("matrix", ("QA", "PRD")), Mark("hour", ("7", "2")),
                 Mark("flow", ("QA·2", "PRD·3")), Mark("dim", ("cause", "x|y")))),
    State(show=Mark("unresolved", ("2026-11-02", "4")), countermeasures=(date(2026, 11, 3), date(2026, 11, 17))),
    State(show=Mark("issue", ("DEMO-261120-007",)), marks=(Mark("ageing", ("2", "-")),)),
]


@pytest.mark.parametrize("view", ROUND_TRIPS)
def test_a_state_goes_to_the_address_and_back_unchanged(view):
    query = state.to_query(view, TZ)
    parsed, notices = state.parse(query, TZ)
    assert notices == []
    assert parsed == view
    assert state.to_query(parsed, TZ) == query


def test_the_default_view_has_an_empty_address_and_values_read_as_written():
    assert state.to_query(State(), TZ) == ""
    query = state.to_query(State(filters=(("department", ("QA",)),), marks=(Mark("matrix", ("QA", "PRD")),),
                                 at=site(2026, 11, 23, 8)), TZ)
    assert query == "?at=2026-11-23T08:00&dept=QA&mark=matrix:QA|PRD"


def test_dash_parameters_with_repeated_keys_read_like_the_search_text():
    from_dash, _ = state.parse({"dept": ["QA", "MNT"], "by": "line", "cm": "2026-11-03,2026-11-01"}, TZ)
    from_text, _ = state.parse("?dept=QA&dept=MNT&by=line&cm=2026-11-03&cm=2026-11-01", TZ)
    assert from_dash == from_text
    assert from_dash.values("department") == ("QA", "MNT")
    assert from_dash.countermeasures == (date(2026, 11, 1), date(2026, 11, 3))


NAMES = st.text(alphabet=st.sampled_from("AQ1-_ |%&=#?:·,.供应商延迟+/'\"<>"), min_size=1, max_size=12) \
    .filter(lambda v: v.strip() == v and v != "-")


@settings(max_examples=120, deadline=None)
@given(
    filters=st.dictionaries(st.sampled_from(state.DIMENSIONS), st.lists(NAMES, min_size=1, max_size=3, unique=True),
                            max_size=3),
    marks=st.lists(st.tuples(st.sampled_from(["matrix", "pair", "dim", "held"]), NAMES, NAMES),
                   max_size=3, unique=True),
    window=st.sampled_from(state.PRESETS), lang=st.sampled_from(["zh", "en"]),
    by=st.sampled_from(state.DIMENSIONS),
    days=st.lists(st.dates(date(2025, 1, 1), date(2027, 1, 1)), max_size=3, unique=True),
)
def test_any_state_round_trips(filters, marks, window, lang, by, days):
    view = State(lang=lang, window=window, by=by,
                 filters=tuple((k, tuple(filters[k])) for k in state.FILTER_KEYS if k in filters),
                 marks=tuple(Mark(kind, (a, b)) for kind, a, b in marks),
                 countermeasures=tuple(sorted(days)))
    parsed, notices = state.parse(state.to_query(view, TZ), TZ)
    assert notices == []
    assert parsed == view


@pytest.mark.parametrize("query, word, named", [
    ("?window=fortnight", "explorer_param_choice", ("window", "fortnight")),
    ("?by=colour", "explorer_param_choice", ("by", "colour")),
    ("?at=yesterday", "explorer_param_time", ("at", "yesterday")),
    ("?since=2026-13-01", "explorer_param_time", ("since", "2026-13-01")),
    ("?cm=2026-02-30", "explorer_param_date", ("cm", "2026-02-30")),
    ("?mark=volcano:QA", "explorer_param_mark", ("mark", "volcano:QA")),
    ("?mark=matrix:QA", "explorer_param_mark", ("mark", "matrix:QA")),
    ("?mark=matrix:QA|", "explorer_param_mark", ("mark", "matrix:QA|")),
    ("?show=hour", "explorer_param_mark", ("show", "hour")),
    ("?lang=fr", "explorer_param_invalid", ("lang", "fr")),
    ("?colour=red", "explorer_param_unknown", ("colour", "red")),
])
def test_a_bad_value_is_left_out_and_named(query, word, named):
    parsed, notices = state.parse(query, TZ)
    assert notices == [Notice(word, {**notices[0].values, "param": named[0], "value": named[1]})]
    assert notices[0].word == word
    clean, _ = state.parse(query.split("=")[0] + "=", TZ)
    assert parsed == clean


def test_a_long_value_is_shown_cut():
    _, notices = state.parse("?by=" + "x" * 100, TZ)
    assert notices[0].values["value"] == "x" * 31 + "…"


def test_too_many_values_keep_the_first():
    parsed, notices = state.parse("?" + "&".join(f"dept=D{i}" for i in range(state.MAX_VALUES + 5)), TZ)
    assert len(parsed.values("department")) == state.MAX_VALUES
    assert notices[0].word == "explorer_param_too_many"


# ---- the window a state asks for -----------------------------------------------------------

def window(query: str, shift=None, now: datetime = NOW):
    asked, _ = state.parse(query, TZ)
    return state.resolve(asked, now, TZ, (lambda at: shift) if shift is not None else None)


def test_presets_end_at_the_instant_and_look_back_at_least_four_weeks():
    seven, notices = window("")
    at = NOW.replace(second=0)
    assert notices == []
    assert (seven.since, seven.until, seven.as_of) == (at - timedelta(days=7), at, at)
    assert seven.history_since == at - timedelta(days=28)
    thirty, _ = window("?window=30d&at=2026-11-20T08:00")
    assert (thirty.since, thirty.until) == (site(2026, 10, 21, 8), site(2026, 11, 20, 8))
    assert thirty.history_since == thirty.since


def test_today_starts_at_the_sites_midnight():
    today, _ = window("?window=today&at=2026-11-23T07:30")
    assert (today.since, today.until) == (site(2026, 11, 23), site(2026, 11, 23, 7, 30))


def test_this_shift_is_the_plans_shift_at_the_instant_and_today_without_one():
    shift = (site(2026, 11, 23, 8), site(2026, 11, 23, 20))
    found, notices = window("?window=shift&at=2026-11-23T09:15", shift=shift)
    assert (found.since, found.until, found.preset) == (shift[0], site(2026, 11, 23, 9, 15), "shift")
    assert notices == []
    none, notices = window("?window=shift&at=2026-11-23T09:15")
    assert none.preset == "today" and notices == [Notice("explorer_no_shift")]


def test_a_custom_window_ends_at_the_instant_at_the_latest():
    custom, notices = window("?window=custom&since=2026-11-20T08:00&until=2026-11-30T08:00"
                             "&at=2026-11-22T08:00")
    assert (custom.since, custom.until, custom.as_of) == (site(2026, 11, 20, 8), site(2026, 11, 22, 8),
                                                          site(2026, 11, 22, 8))
    assert notices == []


@pytest.mark.parametrize("query, word", [
    ("?window=custom&since=2026-11-20T08:00", "explorer_custom_incomplete"),
    ("?window=custom&since=2026-11-22T08:00&until=2026-11-21T08:00", "explorer_custom_empty"),
    ("?window=custom&since=2026-11-24T08:00&until=2026-11-25T08:00", "explorer_custom_empty"),
])
def test_a_custom_window_that_cannot_be_shown_falls_back_to_seven_days(query, word):
    fallback, notices = window(query)
    assert fallback.preset == "7d"
    assert fallback.until - fallback.since == timedelta(days=7)
    assert [n.word for n in notices] == [word]


def test_a_custom_window_is_cut_to_the_longest_one():
    long, notices = window("?window=custom&since=2020-01-01T00:00&until=2026-11-20T00:00")
    assert long.until - long.since == timedelta(days=state.MAX_DAYS)
    assert [n.word for n in notices] == ["explorer_custom_too_long"]


def test_an_instant_in_the_future_is_now():
    future, notices = window("?at=2027-01-01T00:00")
    assert future.as_of == NOW.replace(second=0)
    assert [n.word for n in notices] == ["explorer_at_future"]
