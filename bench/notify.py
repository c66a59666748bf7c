"""Push and escalation latency on the demo plant, against the local fake platforms.

Two runs, each with the one sender running as in production (a thread here, its real clock):
- push: 200 issues raised through FloorLink over a minute (as the andon page raises them),
  across every issue type, so their first messages go to WeCom, Feishu and DingTalk robots, the
  managers' webhook and e-mail: from each raise's commit to its delivery's request answered;
- escalation: 200 open issues written by another program whose response limits all pass in
  the same minute: from each limit passing to its escalation's request answered.
For both: each robot's requests in any 60 s against its limit and the throttled answers
(none: the pace holds), and each delivery counted once (the outbox key) and, at the webhook,
each issue received once.

    python -m bench.notify [--issues 200] [--url DATABASE_URL]

The latency is taken from the delivery's `sent_at`, written after the platform answered: an
upper bound of the time the request reached it.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import insert, select

from tools.fake_platforms import FakePlatforms, demo_policy_environment

PREFIX = "BN-"
RESULTS_DIR = Path(__file__).resolve().parent / "results"
GOAL_S = 5.0


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))] if ordered else float("nan")


class Run:
    def __init__(self, url: str, issues: int):
        from data import db, demo, timezones
        from data.notify import outbox, policy

        self.url, self.issues = url, issues
        self.engine = db.get_engine(url)
        db.upgrade_schema(self.engine)
        end = timezones.utc_now().replace(minute=0, second=0, microsecond=0)
        demo.build_demo_plant(self.engine, days=1, seed=7, end=end)
        # The demo plant's policy without its quiet hours, which would hold the night's messages.
        text = demo.history.ESCALATION_POLICY.read_text(encoding="utf-8")
        policy.store(self.engine, text.replace(', quiet_hours: "22:00-06:00"', ""), "bench-policy.yaml",
                     "bench", timezones.utc_now())
        outbox.listen()

    def sender(self):
        from data.notify import sender

        running = sender.Sender(self.engine, holder="bench")
        thread = threading.Thread(target=running.run, daemon=True)
        thread.start()
        return running, thread

    def rules(self) -> dict:
        from data.models import SlaRule

        with self.engine.connect() as conn:
            return {r.issue_type: r for r in conn.execute(select(SlaRule.__table__))}

    def push(self) -> dict:
        """Raise the issues through FloorLink, a steady minute of them."""
        from data import db, store

        rules, rng = self.rules(), random.Random(1)
        types = sorted(rules)
        committed = {}
        running, thread = self.sender()
        start = time.time()
        for n in range(self.issues):
            time.sleep(max(0.0, start + n * 60.0 / self.issues - time.time()))
            issue_id = f"{PREFIX}P{n:04d}"
            with db.session_scope(self.engine) as session:
                store.raise_issue(session, issue_id=issue_id, issue_type=types[n % len(types)],
                                  title=f"压测问题 {n}", severity=rng.choice(("P2", "P3")),
                                  at=datetime.now(timezone.utc), location_code=None, raised_by="bench")
            committed[issue_id] = time.time()
        self._wait_sent(f"{PREFIX}P", "L0")
        running.stop()
        thread.join()
        return self._latencies(f"{PREFIX}P", "L0", lambda d: committed[d.issue_id])

    def escalation(self) -> dict:
        """Open issues written beside FloorLink whose response limits pass within a minute."""
        from data.models import Issue, NotifyStep

        rules = self.rules()
        types = sorted(rules)
        now = datetime.now(timezone.utc)
        due = {}
        with self.engine.begin() as conn:
            for n in range(self.issues):
                rule = rules[types[n % len(types)]]
                limit = now + timedelta(seconds=10 + 60.0 * n / self.issues)
                raised = limit - timedelta(minutes=rule.ack_minutes)
                issue_id = f"{PREFIX}E{n:04d}"
                conn.execute(insert(Issue).values(
                    id=issue_id, issue_type=rule.issue_type, title=f"超时问题 {n}", severity="P2",
                    raised_at=raised, owner_department_code=rule.owner_department_code, status="open",
                    updated_at=now))
                conn.execute(insert(NotifyStep).values(issue_id=issue_id, step="L0", level=0,
                                                       due_at=raised, taken_at=now))
                due[issue_id] = limit.timestamp()
        running, thread = self.sender()
        self._wait_sent(f"{PREFIX}E", "L1", deadline_s=150)
        running.stop()
        thread.join()
        return self._latencies(f"{PREFIX}E", "L1", lambda d: due[d.issue_id])

    def _deliveries(self, prefix: str, step: str) -> list:
        from data.models import Delivery

        with self.engine.connect() as conn:
            return conn.execute(select(Delivery.__table__).where(
                Delivery.issue_id.startswith(prefix), Delivery.step == step)).all()

    def _wait_sent(self, prefix: str, step: str, deadline_s: float = 120) -> None:
        stop = time.time() + deadline_s
        while time.time() < stop:
            rows = self._deliveries(prefix, step)
            if len(rows) >= self.issues and all(r.status != "pending" for r in rows):
                return
            time.sleep(0.5)

    def _latencies(self, prefix: str, step: str, since) -> dict:
        rows = self._deliveries(prefix, step)
        sent = [r for r in rows if r.status == "sent"]
        waits = [r.sent_at.timestamp() - since(r) for r in sent]
        by_channel = defaultdict(list)
        for r, wait in zip(sent, waits):
            by_channel[r.channel_code].append(wait)
        return {"deliveries": len(rows), "sent": len(sent),
                "failed": sum(r.status == "failed" for r in rows),
                "pending": sum(r.status == "pending" for r in rows),
                "issues": len({r.issue_id for r in rows}),
                "requests": len({r.sent_in for r in sent}),
                "p50_s": _p(waits, 0.5), "p95_s": _p(waits, 0.95), "max_s": max(waits, default=float("nan")),
                "by_channel": {c: {"n": len(w), "p95_s": _p(w, 0.95)} for c, w in sorted(by_channel.items())}}


def _pacing(fake: FakePlatforms) -> list[dict]:
    rows = []
    for kind, key, per_minute in (("wecom", "prd", 20), ("feishu", "qa", 100), ("dingtalk", "wh", 20),
                                  ("webhook", "managers", 600)):
        times = sorted(r.at for r in fake.received(kind, key))
        most = max((sum(1 for t in times if start <= t < start + 60) for start in times), default=0)
        rows.append({"robot": f"{kind}:{key}", "limit_per_min": per_minute, "requests": fake.requests(kind, key),
                     "accepted": len(times), "most_in_60s": most,
                     "refused": fake.requests(kind, key) - len(times)})
    return rows


def _webhook_once(fake: FakePlatforms) -> dict:
    """How often each bench issue reached the managers' webhook (digests list their ids)."""
    counts = Counter(i for r in fake.received("webhook", "managers") for i in r.body["issue_ids"]
                     if i.startswith(PREFIX))
    return {"issues": len(counts), "more_than_once": sum(1 for c in counts.values() if c > 1)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--issues", type=int, default=200)
    parser.add_argument("--url", default=None, help="database URL (default: a new SQLite file)")
    args = parser.parse_args(argv)
    results = {"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "issues": args.issues}
    with tempfile.TemporaryDirectory() as folder, FakePlatforms() as fake:
        os.environ.update(demo_policy_environment(fake))
        os.environ["CACHE_DIR"] = str(Path(folder) / "cache")
        url = args.url or f"sqlite:///{Path(folder) / 'notify.sqlite'}"
        results["database"] = url.split(":", 1)[0]
        run = Run(url, args.issues)
        results["push"] = run.push()
        results["escalation"] = run.escalation()
        results["pacing"] = _pacing(fake)
        results["webhook"] = _webhook_once(fake)
    _print(results)
    RESULTS_DIR.mkdir(exist_ok=True)
    out = RESULTS_DIR / f"notify-{results['database']}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(results, indent=2, ensure_ascii=False))
    print(f"\nwritten to {out.relative_to(RESULTS_DIR.parent.parent)}")


def _print(results: dict) -> None:
    print(f"{results['issues']} issues, {results['database']}, goal p95 <= {GOAL_S:g} s")
    print(f"{'run':12} {'issues':>6} {'deliveries':>10} {'requests':>8} {'failed':>6} {'pending':>7} "
          f"{'p50 s':>6} {'p95 s':>6} {'max s':>6}  goal")
    for name in ("push", "escalation"):
        r = results[name]
        print(f"{name:12} {r['issues']:>6} {r['deliveries']:>10} {r['requests']:>8} {r['failed']:>6} "
              f"{r['pending']:>7} {r['p50_s']:>6.2f} {r['p95_s']:>6.2f} {r['max_s']:>6.2f}  "
              f"{'met' if r['p95_s'] <= GOAL_S else 'NOT MET'}")
    for name in ("push", "escalation"):
        print(f"  {name} p95 by channel: " + ", ".join(
            f"{c} {v['p95_s']:.2f} s ({v['n']})" for c, v in results[name]["by_channel"].items()))
    print(f"\n{'robot':20} {'limit/min':>9} {'requests':>8} {'accepted':>8} {'most in 60 s':>12} {'refused':>7}")
    for r in results["pacing"]:
        print(f"{r['robot']:20} {r['limit_per_min']:>9} {r['requests']:>8} {r['accepted']:>8} "
              f"{r['most_in_60s']:>12} {r['refused']:>7}")
    w = results["webhook"]
    print(f"\nmanagers' webhook: {w['issues']} issues received, {w['more_than_once']} more than once")


if __name__ == "__main__":
    sys.exit(main())
