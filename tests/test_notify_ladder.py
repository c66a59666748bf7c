"""The escalation ladder against timelines computed by hand: limits passed, the resolution
share, the repeat cap, silences, quiet hours, ping-pong and the shift change of who is on duty.
Pure: no database."""
from datetime import datetime, time, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from data.notify import ladder, policy
from data.notify.ladder import IssueClock, Silence

SITE = ZoneInfo("Asia/Shanghai")
UTC = timezone.utc
RAISED = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)   # Monday 10:00 at the site

LADDER = """
ladder:
  - {level: 0, when: raised, tell: [holder, notify], mention: on_duty}
  - {level: 1, when: ack_limit, tell: [holder], mention: lead}
  - {level: 2, when: resolve_share, share: 0.5, tell: [holder_manager], mention: manager}
  - {level: 3, when: after_level, after_minutes: 60, tell: [plant], mention: plant_manager,
     repeat_minutes: 60, repeats: 2}
"""


def steps():
    return policy.parse(LADDER, "ladder.yaml", zone=SITE).default_ladder


def clock(**changes) -> IssueClock:
    values = dict(id="Q-1", issue_type="quality_anomaly", severity="P2", raised_at=RAISED,
                  ack_minutes=10, resolve_minutes=240, holder="QA", line="L2", location_code="L2-ST1")
    values.update(changes)
    return IssueClock(**values)


def at(minutes: float) -> datetime:
    return RAISED + timedelta(minutes=minutes)


def owed(issue: IssueClock, minutes: float, silences=()) -> list[tuple[str, datetime]]:
    return [(o.key, o.due_at) for o in ladder.owed_steps(issue, steps(), silences, at(minutes))]


def test_the_raise_tells_at_once_and_the_response_limit_passes_at_ten_minutes():
    issue = clock()
    assert owed(issue, 0) == [("L0", at(0))]
    assert owed(issue, 10 - 1 / 60) == [("L0", at(0))]
    assert owed(issue, 10) == [("L0", at(0)), ("L1", at(10))]


def test_an_answer_in_time_skips_the_response_step_but_not_the_resolution_share():
    issue = clock(acknowledged_at=at(5))
    assert owed(issue, 30) == [("L0", at(0))]
    # Half of the 240-minute resolution limit: 12:00 at the site.
    assert owed(issue, 119) == [("L0", at(0))]
    assert owed(issue, 120) == [("L0", at(0)), ("L2", at(120))]


def test_a_late_answer_ends_the_response_step_from_then_on():
    issue = clock(acknowledged_at=at(15))
    assert owed(issue, 12) == [("L0", at(0)), ("L1", at(10))]
    assert owed(issue, 15) == [("L0", at(0))]


def test_the_plant_is_told_an_hour_after_the_manager_then_twice_more_and_no_more():
    issue = clock()
    assert [key for key, _ in owed(issue, 179)] == ["L0", "L1", "L2"]
    assert owed(issue, 10 * 60)[3:] == [("L3", at(180)), ("L3#2", at(240)), ("L3#3", at(300))]
    assert len(owed(issue, 48 * 60)) == 6


def test_a_resolved_issue_owes_nothing_however_late():
    assert owed(clock(finished_at=at(60)), 600) == []
    # Resolved after as_of: not known yet, so it still climbs.
    assert [k for k, _ in owed(clock(finished_at=at(700)), 600)][-1] == "L3#3"


def test_a_matching_silence_moves_a_step_to_its_end_and_another_line_s_does_not():
    maintenance = Silence(starts_at=at(110), ends_at=at(150), line="L2")
    assert [k for k, _ in owed(clock(acknowledged_at=at(5)), 140, [maintenance])] == ["L0"]
    assert owed(clock(acknowledged_at=at(5)), 150, [maintenance])[-1] == ("L2", at(150))
    elsewhere = Silence(starts_at=at(110), ends_at=at(150), line="L1")
    assert owed(clock(acknowledged_at=at(5)), 120, [elsewhere])[-1] == ("L2", at(120))
    # Back to back: the step waits for the end of the second.
    chained = [maintenance, Silence(starts_at=at(150), ends_at=at(170), department_code="QA")]
    assert owed(clock(acknowledged_at=at(5)), 170, chained)[-1] == ("L2", at(170))
    assert [k for k, _ in owed(clock(acknowledged_at=at(5)), 169, chained)] == ["L0"]


def test_a_silence_of_another_department_or_type_does_not_match():
    issue = clock()
    assert not Silence(at(0), at(60), department_code="PRD").matches(issue)
    assert not Silence(at(0), at(60), issue_type="equipment_failure").matches(issue)
    assert Silence(at(0), at(60), issue_type="quality_anomaly", location_code="L2-ST1").matches(issue)


def quiet_channel(hours: str) -> policy.Channel:
    start, end = (time.fromisoformat(part) for part in hours.split("-"))
    return policy.Channel(code="c", kind="wecom", url="https://x", quiet_hours=(start, end))


def test_quiet_hours_hold_a_message_until_morning_but_never_a_p1():
    night = quiet_channel("22:00-06:00")
    eleven_pm = datetime(2026, 11, 30, 15, 0, tzinfo=UTC)          # 23:00 at the site
    six_am = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)             # 06:00 the next day
    assert policy.quiet_until(night, eleven_pm, "P2", SITE) == six_am
    assert policy.quiet_until(night, eleven_pm, "P1", SITE) == eleven_pm
    two_am = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)
    assert policy.quiet_until(night, two_am, "P3", SITE) == six_am
    assert policy.quiet_until(night, six_am, "P3", SITE) == six_am
    noon = quiet_channel("12:00-13:00")
    lunch = datetime(2026, 11, 30, 4, 30, tzinfo=UTC)              # 12:30 at the site
    assert policy.quiet_until(noon, lunch, "P4", SITE) == datetime(2026, 11, 30, 5, 0, tzinfo=UTC)
    assert policy.quiet_until(noon, at(0), "P4", SITE) == at(0)


@pytest.mark.parametrize("holders, returned", [
    (["PRD", "QA", "PRD"], True), (["PRD", "QA", "QA", "PRD"], True), (["PRD", "QA"], False),
    (["PRD", "PRD", "QA"], False), (["PRD", "QA", "WH"], False), (["PRD", "QA", "PRD", "PRD"], False),
    (["PRD"], False),
])
def test_a_hand_back_to_a_department_the_issue_had_left_is_ping_pong(holders, returned):
    assert ladder.returned_to_earlier_holder(holders) is returned


ROSTER = """
ladder: [{level: 0, when: raised, tell: [holder]}]
roster:
  - {department: PRD, role: on_duty, from: "08:00", to: "20:00", people: [A]}
  - {department: PRD, role: on_duty, from: "20:00", to: "08:00", people: [B], days: [mon]}
  - {department: PRD, role: lead, people: [L]}
  - {role: plant_manager, people: [P]}
"""


def site(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=SITE)


def test_who_is_on_duty_follows_the_shift_change():
    plan = policy.parse(ROSTER, "roster.yaml", zone=SITE)
    assert plan.on_duty("PRD", "on_duty", site(30, 19, 59)) == ("A",)
    assert plan.on_duty("PRD", "on_duty", site(30, 20, 0)) == ("B",)
    # Monday's night shift runs into Tuesday morning; Tuesday has no night shift.
    assert plan.on_duty("PRD", "on_duty", datetime(2026, 12, 1, 2, 0, tzinfo=SITE)) == ("B",)
    assert plan.on_duty("PRD", "on_duty", datetime(2026, 12, 1, 23, 0, tzinfo=SITE)) == ()
    assert plan.on_duty("PRD", "lead", site(30, 3, 0)) == ("L",)
    assert plan.on_duty(None, "plant_manager", site(30, 3, 0)) == ("P",)
    assert plan.on_duty("QA", "on_duty", site(30, 10, 0)) == ()


def test_a_ladder_for_the_type_and_severity_comes_before_the_default():
    plan = policy.parse(LADDER + """
ladders:
  - issue_type: [equipment_failure]
    severity: [P1]
    ladder: [{level: 0, when: raised, tell: [plant]}]
""", "ladders.yaml", zone=SITE)
    assert len(plan.ladder_for("equipment_failure", "P1")) == 1
    assert len(plan.ladder_for("equipment_failure", "P2")) == 4
    assert len(plan.ladder_for("quality_anomaly", "P1")) == 4


def test_a_policy_with_mistakes_names_every_one_with_its_place():
    text = """
language: fr
channels:
  - {code: a, kind: wecom}
  - {code: b, kind: sms, url: "https://x"}
  - {code: c, kind: email, to: [not-an-address]}
departments:
  PRD: {channel: nowhere}
roster:
  - {department: PRD, role: on_duty, from: "8:00", to: "20:00", people: [nobody]}
ladder:
  - {level: 1, when: ack, tell: [holder]}
  - {level: 1, when: after_level, tell: [], repeats: 2}
"""
    with pytest.raises(policy.PolicyError) as raised:
        policy.parse(text, "bad.yaml", known={"departments": {"PRD"}, "people": {"PRD-01"},
                                               "issue_types": set()}, zone=SITE)
    problems = "\n".join(raised.value.problems)
    for expected in ("language: 'fr' is not one of", "channels[0].url: a wecom channel needs",
                     "channels[1].kind: 'sms' is not one of", "channels[2].to[0]: 'not-an-address'",
                     "departments.PRD.channel: 'nowhere' is not a channel", "roster[0].from: must be",
                     "roster[0].people[0]: 'nobody' is not in people", "ladder[0].when: 'ack' is not one of",
                     "ladder[1].level: levels climb", "ladder[1].tell: tells nobody",
                     "ladder[1].repeat_minutes: repeats need repeat_minutes"):
        assert expected in problems
    assert str(raised.value).startswith("bad.yaml: ")


def test_an_unset_address_leaves_the_channel_out_and_says_which():
    text = LADDER + """
channels: [{code: w, kind: wecom, url: "env:WECOM_URL"}]
plant_channel: w
"""
    assert policy.parse(text, "p.yaml", zone=SITE, environ={}).channels["w"].unset == ("WECOM_URL",)
    set_ = policy.parse(text, "p.yaml", zone=SITE, environ={"WECOM_URL": "https://q/x?key=1"})
    assert set_.channels["w"].url == "https://q/x?key=1" and set_.channels["w"].unset == ()
