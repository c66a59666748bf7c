"""The canonical tables of the data contract, as SQLAlchemy 2.x models.

Instants are stored as naive UTC (portable between SQLite and PostgreSQL) and come back
as aware UTC datetimes; `UtcDateTime` refuses naive values so no local time slips in.
"""
from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Optional

from sqlalchemy import (
    BigInteger, Boolean, CheckConstraint, Date, DateTime, Float, ForeignKey, Index, Integer, LargeBinary, String, Text,
    TypeDecorator, UniqueConstraint, text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

ISSUE_STATUSES = ("open", "acknowledged", "resolved", "closed", "cancelled")
EVENT_KINDS = ("raised", "acknowledged", "reassigned", "escalated", "commented", "resolved",
               "reopened", "closed")
SEVERITIES = ("P1", "P2", "P3", "P4")
LOCATION_KINDS = ("supplier", "receiving", "iqc", "warehouse", "line_side", "wip", "finished",
                  "customer", "scrap", "consumption")


class UtcDateTime(TypeDecorator):
    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r} given to the database; pass an aware instant")
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value.replace(tzinfo=timezone.utc)


def _written_now() -> datetime:
    """The writer's clock, for `recorded_at` / `updated_at`: when a row reached the database,
    not when its event happened. Watermarks use it; no KPI does."""
    return datetime.now(timezone.utc)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class Base(DeclarativeBase):
    pass


class Department(Base):
    __tablename__ = "departments"
    code: Mapped[str] = mapped_column(String(32), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))


class Person(Base):
    __tablename__ = "people"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    im_handle: Mapped[Optional[str]] = mapped_column(String(100))


class SlaRule(Base):
    __tablename__ = "sla_rules"
    issue_type: Mapped[str] = mapped_column(String(64), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    owner_department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    notify_department_codes: Mapped[str] = mapped_column(String(400), default="")
    ack_minutes: Mapped[float] = mapped_column(Float)
    resolve_minutes: Mapped[float] = mapped_column(Float)
    __table_args__ = (
        CheckConstraint("ack_minutes > 0", name="ck_sla_ack_positive"),
        CheckConstraint("resolve_minutes >= ack_minutes", name="ck_sla_resolve_after_ack"),
    )


class Location(Base):
    __tablename__ = "locations"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))
    line: Mapped[Optional[str]] = mapped_column(String(32))
    max_dwell_minutes: Mapped[Optional[float]] = mapped_column(Float)
    __table_args__ = (CheckConstraint(_in("kind", LOCATION_KINDS), name="ck_location_kind"),)


class Material(Base):
    __tablename__ = "materials"
    code: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    unit: Mapped[str] = mapped_column(String(16))
    category: Mapped[str] = mapped_column(String(64))


class Issue(Base):
    __tablename__ = "issues"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    issue_type: Mapped[str] = mapped_column(ForeignKey("sla_rules.issue_type"))
    title: Mapped[str] = mapped_column(String(400))
    severity: Mapped[str] = mapped_column(String(2))
    location_code: Mapped[Optional[str]] = mapped_column(ForeignKey("locations.code"))
    raised_by: Mapped[Optional[str]] = mapped_column(String(100))
    raised_at: Mapped[datetime] = mapped_column(UtcDateTime)
    owner_department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    acknowledged_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    resolved_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    closed_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    cause: Mapped[Optional[str]] = mapped_column(Text)
    # When this row was last written (the writer's clock): the wall reads only what changed.
    updated_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    __table_args__ = (
        CheckConstraint(_in("status", ISSUE_STATUSES), name="ck_issue_status"),
        Index("ix_issues_updated_at", "updated_at"),
        CheckConstraint(_in("severity", SEVERITIES), name="ck_issue_severity"),
        Index("ix_issues_raised_at", "raised_at"),
        Index("ix_issues_owner_raised_at", "owner_department_code", "raised_at"),
        # The wall asks "what is open now" every refresh: index only the unresolved rows.
        Index("ix_issues_unresolved", "raised_at",
              sqlite_where=text("resolved_at IS NULL AND status != 'cancelled'"),
              postgresql_where=text("resolved_at IS NULL AND status != 'cancelled'")),
        Index("ix_issues_resolved_at", "resolved_at"),
    )


class IssueEvent(Base):
    __tablename__ = "issue_events"
    # 64-bit on PostgreSQL (migration 0007); SQLite's rowid is 64-bit as INTEGER.
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    issue_id: Mapped[str] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(16))
    department_code: Mapped[Optional[str]] = mapped_column(ForeignKey("departments.code"))
    actor: Mapped[Optional[str]] = mapped_column(String(100))
    note: Mapped[Optional[str]] = mapped_column(Text)
    recorded_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime, default=_written_now)
    # Who recorded the event (data.store.record_as): an ingest API token's source, or
    # `import:<file> (<account>)`, `demo:plant`, `demo:simulator`, `user:<name>`; None when
    # written before writers were recorded, or by a writer beside FloorLink.
    source: Mapped[Optional[str]] = mapped_column(String(64))
    __table_args__ = (
        CheckConstraint(_in("kind", EVENT_KINDS), name="ck_event_kind"),
        Index("ix_issue_events_recorded_at", "recorded_at"),
        # An event is the same event when issue, instant, kind and department agree:
        # re-imports and simulator retries cannot write it twice.
        UniqueConstraint("issue_id", "at", "kind", "department_code", name="uq_issue_event"),
        Index("ix_issue_events_at", "at"),
    )


class Movement(Base):
    __tablename__ = "movements"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    material_code: Mapped[str] = mapped_column(ForeignKey("materials.code"))
    lot: Mapped[str] = mapped_column(String(64))
    qty: Mapped[float] = mapped_column(Float)
    from_location_code: Mapped[str] = mapped_column(ForeignKey("locations.code"))
    to_location_code: Mapped[str] = mapped_column(ForeignKey("locations.code"))
    order_ref: Mapped[Optional[str]] = mapped_column(String(64))
    recorded_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime, default=_written_now)
    __table_args__ = (
        CheckConstraint("qty > 0", name="ck_movement_qty_positive"),
        Index("ix_movements_recorded_at", "recorded_at"),
        Index("ix_movements_at", "at"),
        Index("ix_movements_to_at", "to_location_code", "at"),
        Index("ix_movements_from_at", "from_location_code", "at"),
        Index("ix_movements_lot", "lot"),
    )


class LotStock(Base):
    """The running balance of each lot at each location over every movement recorded, kept
    by the write path (data.store) so the stock now is read without summing the whole
    movement history. Balances that are zero are not kept."""
    __tablename__ = "lot_stock"
    lot: Mapped[str] = mapped_column(String(64), primary_key=True)
    material_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    location_code: Mapped[str] = mapped_column(String(64), primary_key=True)
    qty: Mapped[float] = mapped_column(Float)
    # The last time the lot moved into the location: the start of its dwell there.
    last_in_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)


class ProductionPlan(Base):
    __tablename__ = "production_plan"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    line: Mapped[str] = mapped_column(String(32))
    shift_start: Mapped[datetime] = mapped_column(UtcDateTime)
    shift_end: Mapped[datetime] = mapped_column(UtcDateTime)
    planned_qty: Mapped[float] = mapped_column(Float)
    actual_qty: Mapped[Optional[float]] = mapped_column(Float)
    updated_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    __table_args__ = (
        UniqueConstraint("line", "shift_start", name="uq_plan_line_shift"),
        CheckConstraint("shift_end > shift_start", name="ck_plan_shift_order"),
        Index("ix_plan_shift_start", "shift_start"),
        Index("ix_plan_updated_at", "updated_at"),
    )


class DataVersion(Base):
    """Counters that bulk writers (import, demo plant) raise, so incremental readers know
    to reload instead of following row by row."""
    __tablename__ = "data_versions"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


CANONICAL_TABLES = {
    "departments": Department, "people": Person, "sla_rules": SlaRule, "locations": Location,
    "materials": Material, "issues": Issue, "issue_events": IssueEvent, "movements": Movement,
    "production_plan": ProductionPlan,
}


class ApiToken(Base):
    """A writer's key to the ingest API (data/ingest/tokens.py). Only the token's sha256 is
    kept: whoever reads the database cannot write as the source."""
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    source: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)


class ApiAnswer(Base):
    """The answer given to a write sent with an Idempotency-Key, kept so that a retry of the
    same request gets the same answer instead of writing again (data/ingest/api.py)."""
    __tablename__ = "api_answers"
    source: Mapped[str] = mapped_column(String(64), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # sha256 of the method, path and body: the same key sent with another request is refused.
    fingerprint: Mapped[str] = mapped_column(String(64))
    status: Mapped[int] = mapped_column(Integer)
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (Index("ix_api_answers_created_at", "created_at"),)


ROLES = ("viewer", "operator", "manager", "admin")


class User(Base):
    """A person who signs in (data/auth/users.py): only an argon2id hash of the password is
    kept; failed attempts in a row lock the name for a while."""
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str] = mapped_column(String(200))
    failed_attempts: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    disabled_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    __table_args__ = (CheckConstraint(_in("role", ROLES), name="ck_user_role"),)


class ScreenToken(Base):
    """A wall screen's read-only key, put in its URL (`?screen=`): named after the screen,
    kept as a sha256 like an API token, revocable."""
    __tablename__ = "screen_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(64))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_used_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    revoked_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)


class AuditEntry(Base):
    """One line of the audit log: who did what, when, from where (docs/security.md)."""
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(32))
    who: Mapped[str] = mapped_column(String(100))
    address: Mapped[Optional[str]] = mapped_column(String(64))
    detail: Mapped[Optional[str]] = mapped_column(Text)
    __table_args__ = (Index("ix_audit_log_at", "at"),)


SCREEN_OUTCOMES = ("ok", "db_down", "error")


class WallScreen(Base):
    """A wall screen as its last refresh left it (data/fleet.py): who it is, where it stands,
    what it shows, and how its last refresh went. One row per screen, written by the web
    server in batches; the fleet page (/fleet) reads it."""
    __tablename__ = "wall_screens"
    # "token:<screen token's name>", "browser:<the id its browser keeps>" or "address:<ip>".
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[Optional[str]] = mapped_column(String(64))
    browser_id: Mapped[Optional[str]] = mapped_column(String(32))
    address: Mapped[Optional[str]] = mapped_column(String(64))
    page: Mapped[str] = mapped_column(String(32))
    department: Mapped[Optional[str]] = mapped_column(String(64))
    line: Mapped[Optional[str]] = mapped_column(String(64))
    replay_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    lang: Mapped[str] = mapped_column(String(8))
    kiosk: Mapped[Optional[bool]] = mapped_column(Boolean)
    # The build its page was loaded with; the server's is data.cache.BUILD_ID.
    build_id: Mapped[Optional[str]] = mapped_column(String(32))
    user_agent: Mapped[Optional[str]] = mapped_column(String(300))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime)
    last_refresh: Mapped[datetime] = mapped_column(UtcDateTime)
    last_outcome: Mapped[str] = mapped_column(String(16))
    outcome_since: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (
        CheckConstraint(_in("last_outcome", SCREEN_OUTCOMES), name="ck_wall_screen_outcome"),
        Index("ix_wall_screens_last_refresh", "last_refresh"),
    )


DELIVERY_STATUSES = ("pending", "sent", "failed")


class NotifyPolicy(Base):
    """One imported escalation policy (data/notify/policy.py): the checked document as JSON.
    The newest row is the policy in force; the older ones are its history."""
    __tablename__ = "notify_policies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    imported_at: Mapped[datetime] = mapped_column(UtcDateTime)
    imported_by: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(200))
    document: Mapped[str] = mapped_column(Text)


class NotifySilence(Base):
    """A time in which matching issues do not climb the ladder (planned maintenance, a line
    stopped on purpose): a step due in it waits for its end. An empty matcher matches all."""
    __tablename__ = "notify_silences"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    starts_at: Mapped[datetime] = mapped_column(UtcDateTime)
    ends_at: Mapped[datetime] = mapped_column(UtcDateTime)
    department_code: Mapped[Optional[str]] = mapped_column(String(32))
    line: Mapped[Optional[str]] = mapped_column(String(32))
    location_code: Mapped[Optional[str]] = mapped_column(String(64))
    issue_type: Mapped[Optional[str]] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ck_silence_ends_after_start"),
                      Index("ix_notify_silences_ends_at", "ends_at"))


class NotifyStep(Base):
    """A ladder step taken for an issue (data/notify/outbox.py): the step's idempotency, so a
    restarted or second notifier never takes it again."""
    __tablename__ = "notify_steps"
    issue_id: Mapped[str] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    step: Mapped[str] = mapped_column(String(32), primary_key=True)
    level: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[datetime] = mapped_column(UtcDateTime)
    taken_at: Mapped[datetime] = mapped_column(UtcDateTime)


class Delivery(Base):
    """One message owed to one channel (the outbox, data/notify/outbox.py): written in the
    transaction of the event that causes it, sent by the one sender. `key` is the idempotency
    key (issue, step, channel): the same step cannot be owed twice."""
    __tablename__ = "notify_outbox"
    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"),
                                    primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    # None: a message about no issue (the scheduled weekly pack, data/reports/schedule.py).
    issue_id: Mapped[Optional[str]] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    # "L0".."L9", a repeat as "L3#2", a ping-pong as "PP@<epoch s>", a weekly pack its week
    step: Mapped[str] = mapped_column(String(32))
    level: Mapped[int] = mapped_column(Integer)
    channel_code: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Not before (quiet hours hold a message to their end).
    deliver_after: Mapped[datetime] = mapped_column(UtcDateTime)
    # The message as written (data/notify/messages.Message as JSON): what is sent, later too.
    message: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(Text)
    sent_at: Mapped[Optional[datetime]] = mapped_column(UtcDateTime)
    # The delivery whose request carried this one (itself, or a digest's first).
    sent_in: Mapped[Optional[int]] = mapped_column(BigInteger().with_variant(Integer, "sqlite"))
    __table_args__ = (
        CheckConstraint(_in("status", DELIVERY_STATUSES), name="ck_delivery_status"),
        Index("ix_notify_outbox_due", "status", "next_attempt_at"),
        Index("ix_notify_outbox_issue", "issue_id"),
        Index("ix_notify_outbox_created_at", "created_at"),
        # A digest's size on the delivery log; a restarted sender's last minute per channel.
        Index("ix_notify_outbox_sent_in", "sent_in"),
    )


class AckLinkUse(Base):
    """The one use of a signed acknowledgement link (data/notify/links.py), keyed by the
    link's nonce: a second tap finds it and says what already happened."""
    __tablename__ = "ack_link_uses"
    nonce: Mapped[str] = mapped_column(String(32), primary_key=True)
    issue_id: Mapped[str] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    used_at: Mapped[datetime] = mapped_column(UtcDateTime)
    action: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str] = mapped_column(String(100))


class NotifyLease(Base):
    """Who sends: one sender holds the lease and renews it; another takes it only once it
    has lapsed, so gunicorn's workers and a second host never send twice."""
    __tablename__ = "notify_lease"
    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(100))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


class IssuePhoto(Base):
    """A photo taken at the station when the issue was raised (the andon page)."""
    __tablename__ = "issue_photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    issue_id: Mapped[str] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UtcDateTime)
    content_type: Mapped[str] = mapped_column(String(32))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    __table_args__ = (Index("ix_issue_photos_issue", "issue_id"),)


class WeeklyPack(Base):
    """A weekly review pack as built once after its week (data/reports/weekly.py): the figures
    the meeting saw, kept as JSON so that a later render shows them whatever was written since."""
    __tablename__ = "weekly_packs"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    # ISO week in site time, as "2026-W48" (sorts as the weeks do).
    week: Mapped[str] = mapped_column(String(8), unique=True)
    built_at: Mapped[datetime] = mapped_column(UtcDateTime)
    as_of: Mapped[datetime] = mapped_column(UtcDateTime)
    built_by: Mapped[str] = mapped_column(String(100))
    pack: Mapped[str] = mapped_column(Text)


ACTION_STATUSES = ("open", "in_progress", "done", "verified", "dropped")


class ReviewAction(Base):
    """A decision of the weekly review (data/reports/actions.py): carried into every later
    pack until it is verified or dropped. `about` is a KPI key of the pack or issue ids;
    `status_history` the status changes as JSON ([{at, by, from, to}])."""
    __tablename__ = "review_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    problem: Mapped[str] = mapped_column(Text)
    about: Mapped[str] = mapped_column(String(400))
    countermeasure: Mapped[str] = mapped_column(Text)
    owner: Mapped[str] = mapped_column(String(100))
    department_code: Mapped[str] = mapped_column(ForeignKey("departments.code"))
    due: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    evidence: Mapped[str] = mapped_column(Text, default="")
    opened_week: Mapped[str] = mapped_column(String(8))
    closed_week: Mapped[Optional[str]] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    created_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_by: Mapped[str] = mapped_column(String(100))
    status_history: Mapped[str] = mapped_column(Text, default="[]")
    __table_args__ = (
        CheckConstraint(_in("status", ACTION_STATUSES), name="ck_review_action_status"),
        Index("ix_review_actions_opened_week", "opened_week"),
    )
