"""A message as the outbox keeps it and every channel sends it: plain text lines (text from
data stays text: each channel escapes it for its own format), the people to @-mention with
their handles per platform, and the link that acknowledges."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

# Handle kinds a person may carry in people.im_handle ("wecom:zhangsan;mobile:138…"); a bare
# handle counts for every platform that mentions by id.
HANDLE_KINDS = ("wecom", "feishu", "dingtalk", "mobile", "email")
EVENTS = ("issue.raised", "issue.escalated", "issue.ping_pong", "digest", "report.weekly")


@dataclass(frozen=True)
class Mention:
    name: str
    handles: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    event: str
    # The outbox key of the delivery (a digest: its first delivery's key, "+n"): receivers
    # that can dedupe (the generic webhook) do so on it.
    event_id: str
    issue_ids: tuple[str, ...]
    level: int
    severity: str
    lang: str
    title: str
    lines: tuple[str, ...]
    link: str | None
    link_text: str
    mentions: tuple[Mention, ...] = ()
    # When the step fell due (ISO-8601, UTC).
    at: str = ""

    def text(self) -> str:
        """Title, lines and link as one plain text: what a platform without formatting shows."""
        parts = [self.title, *self.lines]
        if self.link:
            parts.append(f"{self.link_text}: {self.link}")
        return "\n".join(parts)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "Message":
        values = json.loads(text)
        values["issue_ids"] = tuple(values["issue_ids"])
        values["lines"] = tuple(values["lines"])
        values["mentions"] = tuple(Mention(m["name"], dict(m["handles"])) for m in values["mentions"])
        return cls(**values)


def parse_handles(im_handle: str | None) -> dict[str, str]:
    """people.im_handle as handles by kind: "wecom:zhangsan;feishu:ou_7d…;mobile:13800000000".
    A bare handle ("zhangsan") is the person's id on WeCom, Feishu and DingTalk alike."""
    handles: dict[str, str] = {}
    for part in (im_handle or "").split(";"):
        part = part.strip()
        if not part:
            continue
        kind, sep, value = part.partition(":")
        if sep and kind.strip() in HANDLE_KINDS:
            handles[kind.strip()] = value.strip()
        else:
            for platform in ("wecom", "feishu", "dingtalk"):
                handles.setdefault(platform, part)
    return handles
