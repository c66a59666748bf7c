"""The issue story of the demo plant's history: about seventy issues a day, each with its
whole life (raised, handed on, acknowledged, escalated, commented, resolved, reopened,
closed or cancelled), at a pace that follows the wall's adoption, with bursts of material
shortages while a supplier is out. Each issue's columns are what its events leave it in,
by the one life cycle (data/lifecycle.py)."""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta

from data import lifecycle
from data.demo import pace
from data.demo.reference import (
    CUSTOMERS, DEPARTMENT_NAMES, HISTORY_ID_PREFIX, LINE_BY_CODE, LINES, PEOPLE, RAW_MATERIALS,
    RULES, STATIONS, SUPPLIERS, Rule, person_id, station_code,
)
from data.demo.timeline import SupplierOutage, Timeline

ISSUES_PER_DAY = 70
SUNDAY_WEIGHT = 0.75
SHORTAGE_BURST_PER_HOUR = 1.2
CANCELLED_SHARE, REOPENED_SHARE = 0.015, 0.03
# Ping-pong before the wall and after; a plain one-way hand-off.
PING_PONG_BEFORE, PING_PONG_AFTER, HAND_OFF_SHARE = 0.3, 0.05, 0.12

TYPE_WEIGHTS = {
    "material_shortage": 16, "quality_anomaly": 18, "equipment_failure": 17,
    "material_receipt": 10, "production_plan_change": 8, "technical_question": 13,
    "safety_hazard": 7, "customer_complaint": 5,
}
SEVERITY_WEIGHTS = {
    "safety_hazard": (15, 35, 40, 10),
    "equipment_failure": (8, 30, 45, 17),
    "material_shortage": (8, 30, 45, 17),
    "customer_complaint": (10, 30, 45, 15),
}
DEFAULT_SEVERITY_WEIGHTS = (4, 18, 50, 28)
RAISED_BY = {
    "material_shortage": ("PRD",), "quality_anomaly": ("PRD", "PRD", "QA"),
    "equipment_failure": ("PRD",), "material_receipt": ("WH",),
    "production_plan_change": ("SAL", "PLN", "PRD"), "technical_question": ("PRD", "QA"),
    "safety_hazard": ("PRD", "EHS", "WH"), "customer_complaint": ("SAL",),
}

TITLES = {
    "material_shortage": ("{line} 线边缺料：{material}", "{line} {material} 仅剩 1 小时用量",
                          "{line} 齐套检查缺 {material}"),
    "quality_anomaly": ("{station} {product} 尺寸超差", "{station} 外观划伤，疑似批量",
                        "{line} 首件检验不合格", "{station} 功能测试不良率升高"),
    "equipment_failure": ("{station} 伺服报警停机", "{station} 气缸卡滞", "{station} 传送带跑偏",
                          "{station} 电批扭力异常", "{station} 视觉检测误判"),
    "material_receipt": ("{supplier} 到货 {material} 数量差异", "{material} 到货包装破损",
                         "{material} 送货单缺失", "{material} 来料标签与实物不符"),
    "production_plan_change": ("{line} 插单：{product} 急单 {n} {unit}", "{line} 换型提前，计划调整",
                               "{line} {product} 计划减产 {n} {unit}"),
    "technical_question": ("{product} 图纸版本疑问（{station}）", "{station} 作业指导书与 BOM 不一致",
                           "{product} 工艺参数待确认"),
    "safety_hazard": ("{station} 急停按钮失效", "{station} 地面油污", "{station} 防护罩缺失",
                      "仓库叉车超速"),
    "customer_complaint": ("{customer} 投诉：{product} 批次外观不良", "{customer} 投诉：交期延误",
                           "{customer} 反馈 {product} 开机无显示"),
}
CAUSES = {
    "material_shortage": ("供应商延迟交货", "BOM 用量错误", "仓库备料遗漏", "插单导致用量增加"),
    "quality_anomaly": ("刀具磨损", "来料尺寸偏差", "未按 SOP 作业", "治具松动", "工艺参数漂移"),
    "equipment_failure": ("传感器老化", "气管漏气", "润滑不足", "电机过载", "PLC 程序异常"),
    "material_receipt": ("供应商少发", "送货单与实物不符", "运输包装破损", "标签打印错误"),
    "production_plan_change": ("客户急单插单", "物料未齐套调整", "设备检修调整"),
    "technical_question": ("图纸版本未更新", "BOM 与图纸不一致", "工艺参数未定义"),
    "safety_hazard": ("防护装置缺失", "油污未及时清理", "安全培训不足"),
    "customer_complaint": ("运输包装损坏", "外观不良流出", "交期延误", "功能不良流出"),
}
# What issues that take much longer wait for: a spare part, a supplier, a drawing.
WAITING = ("等待备件到货", "等待供应商回复", "等待工程变更 ECN", "等待客户确认")
COMMENTS = ("已到现场确认", "已联系供应商，等待回复", "等待备件", "已安排人员处理",
            "临时措施已执行，观察中", "需要工程确认", "已通知相关部门")

# Department pairs that keep passing an issue type back and forth: (partner, away, back).
PING_PONG = {
    "quality_anomaly": ("PRD", "判定为作业问题，转生产部", "非作业原因，退回质量部"),
    "equipment_failure": ("PRD", "操作不当导致，转生产部", "设备本体故障，退回设备维修部"),
    "material_shortage": ("PUR", "供应商未到货，转采购部", "货已到仓，退回仓储物流部"),
    "material_receipt": ("PUR", "数量差异需采购对接供应商", "供应商已确认补发，退回仓储物流部"),
    "technical_question": ("QA", "属检验标准问题，转质量部", "属图纸问题，退回工程技术部"),
    "customer_complaint": ("QA", "需质量分析，转质量部", "非质量问题，退回销售与售后部"),
}
# One-way hand-offs: the partner keeps the issue.
HAND_OFF = {
    "material_shortage": "PUR", "customer_complaint": "QA", "quality_anomaly": "ENG",
    "production_plan_change": "PRD", "technical_question": "QA", "equipment_failure": "ENG",
}



def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class _Step:
    minute: float
    kind: str
    actor: str | None          # "holder", "raiser" or None (the system)
    to_department: str | None = None
    note: str | None = None


class IssueHistory:
    """The issues raised over a timeline, with their events up to its end."""

    def __init__(self, timeline: Timeline):
        self.timeline = timeline

    def _rate_per_minute(self, at: datetime) -> tuple[float, float]:
        """(everyday issues, shortage burst) per minute at this instant."""
        timeline = self.timeline
        local = at.astimezone(timeline.tz)
        weight = pace.arrival_weight(at, timeline.tz)
        if local.weekday() == 6:
            weight *= SUNDAY_WEIGHT
        burst = SHORTAGE_BURST_PER_HOUR / 60 * weight if timeline.outage_at(at) else 0.0
        return ISSUES_PER_DAY / 1440 * weight, burst

    def issues(self) -> tuple[list[dict], list[dict]]:
        """The issues and their events; ids number each site-local day's issues from 001."""
        timeline = self.timeline
        rng = timeline.rng("issues")
        ceiling = (ISSUES_PER_DAY / 1440 + SHORTAGE_BURST_PER_HOUR / 60) * pace.DAY_WEIGHT
        issues, events, per_day = [], [], {}
        minute = 0.0
        while True:
            minute += rng.expovariate(ceiling)
            if minute >= timeline.minutes:
                break
            raised = timeline.at(minute)
            everyday, burst = self._rate_per_minute(raised)
            draw = rng.random() * ceiling
            if draw >= everyday + burst:
                continue
            outage = timeline.outage_at(raised) if draw >= everyday else None
            day = raised.astimezone(timeline.tz).strftime("%y%m%d")
            per_day[day] = per_day.get(day, 0) + 1
            issue, issue_events = self._issue(
                rng, f"{HISTORY_ID_PREFIX}{day}-{per_day[day]:03d}", raised, outage)
            issues.append(issue)
            events += issue_events
        return issues, events

    def _context(self, rng: random.Random, issue_type: str, outage: SupplierOutage | None) -> dict:
        line = rng.choice(LINES)
        if outage is not None:
            materials = [m for m in RAW_MATERIALS if m.supplier == outage.supplier]
            material = rng.choice(materials)
            line = LINE_BY_CODE[rng.choice(sorted(material.usage))]
        else:
            material = rng.choice([m for m in RAW_MATERIALS if line.code in m.usage])
        station = station_code(line.code, rng.choice(STATIONS)[0])
        customer_code, customer = rng.choice(CUSTOMERS)
        location = {
            "material_shortage": f"{line.code}-LS",
            "material_receipt": rng.choice(("RCV-01", "IQC-01")),
            "customer_complaint": customer_code,
            "production_plan_change": station_code(line.code, STATIONS[0][0]),
        }.get(issue_type, station)
        return {
            "line": line.code, "station": station, "product": line.product_name,
            "unit": line.unit, "material": material.name, "n": rng.randrange(100, 1000, 50),
            "supplier": dict(SUPPLIERS)[material.supplier], "customer": customer,
            "location": location,
        }

    def _issue(self, rng: random.Random, issue_id: str, raised: datetime,
               outage: SupplierOutage | None) -> tuple[dict, list[dict]]:
        issue_type = "material_shortage" if outage else _pick(rng, TYPE_WEIGHTS)
        rule = RULES[issue_type]
        severity = rng.choices(("P1", "P2", "P3", "P4"),
                               SEVERITY_WEIGHTS.get(issue_type, DEFAULT_SEVERITY_WEIGHTS))[0]
        context = self._context(rng, issue_type, outage)
        raising = rng.choice(RAISED_BY[issue_type])
        raiser = person_id(raising, rng.randint(1, len(PEOPLE[raising])))
        title = rng.choice(TITLES[issue_type]).format(**context)
        cause = (f"供应商{context['supplier']}交货延迟" if outage
                 else rng.choice(CAUSES[issue_type]))
        steps, cancelled = self._life(rng, rule, severity, raised, cause)
        events, holder = [], rule.owner
        last = None
        for step in sorted(steps, key=lambda s: s.minute):
            at = raised + pace.minutes(step.minute)
            if last is not None and at <= last:
                at = last + timedelta(seconds=1)
            if at > self.timeline.end:
                break
            actor = raiser if step.actor == "raiser" else None
            if step.actor == "holder":
                actor = person_id(holder, rng.randint(1, len(PEOPLE[holder])))
            if step.kind == "reassigned":
                holder = step.to_department
            events.append({"issue_id": issue_id, "at": at, "kind": step.kind,
                           "department_code": holder, "actor": actor, "note": step.note})
            last = at
        issue = {
            "id": issue_id, "issue_type": issue_type, "title": title, "severity": severity,
            "location_code": context["location"], "raised_by": raiser, "raised_at": raised,
            **asdict(lifecycle.state_from_events(events, cancelled)),
        }
        return issue, events

    def _life(self, rng: random.Random, rule: Rule, severity: str, raised: datetime,
              cause: str) -> tuple[list[_Step], bool]:
        """Every step the issue will take, in minutes after it was raised."""
        adoption = self.timeline.progress(raised)
        steps = [_Step(0, "raised", "raiser")]
        if rng.random() < CANCELLED_SHARE:
            minute = rng.uniform(3, 60)
            if rng.random() < 0.5:
                steps.append(_Step(minute / 2, "acknowledged", "holder"))
            steps.append(_Step(minute, "closed", "raiser", note="重复上报，取消"))
            return steps, True
        median = pace.response_median_min(rule.ack_minutes, severity,
                                          self.timeline.is_night(raised),
                                          base=pace.response_base_min(adoption))
        ack = max(0.5, pace.lognormal(rng, median, 0.6))
        handoffs = []
        ping_pong = PING_PONG_BEFORE + (PING_PONG_AFTER - PING_PONG_BEFORE) * adoption
        if rule.issue_type in PING_PONG and rng.random() < ping_pong:
            partner, away, back = PING_PONG[rule.issue_type]
            for _ in range(1 if rng.random() < 0.7 else 2):
                handoffs += [(partner, away), (rule.owner, back)]
        elif rule.issue_type in HAND_OFF and rng.random() < HAND_OFF_SHARE:
            partner = HAND_OFF[rule.issue_type]
            handoffs.append((partner, f"转交{DEPARTMENT_NAMES[partner]}处理"))
        minute = 0.0
        for department, note in handoffs:
            minute += pace.lognormal(rng, 12 * (1.5 - adoption), 0.6)
            steps.append(_Step(minute, "reassigned", "holder", department, note))
        ack += minute
        steps.append(_Step(ack, "acknowledged", "holder"))
        if ack > rule.ack_minutes:
            steps.append(_Step(rule.ack_minutes, "escalated", None,
                               note=pace.escalation_note("ack", rule.ack_minutes)))
        working = pace.lognormal(rng, rule.resolve_minutes * pace.working_share(adoption), 0.6)
        comments = [rng.choice(COMMENTS) for _ in range(rng.choice((0, 0, 1, 1, 2)))]
        if rng.random() < pace.HARD_SHARE:
            working *= rng.uniform(3, 8)
            comments.append(rng.choice(WAITING))
        resolved = ack + max(2.0, working)
        for note in comments:
            steps.append(_Step(rng.uniform(ack, resolved), "commented", "holder", note=note))
        if resolved > rule.resolve_minutes:
            steps.append(_Step(rule.resolve_minutes, "escalated", None,
                               note=pace.escalation_note("resolve", rule.resolve_minutes)))
        steps.append(_Step(resolved, "resolved", "holder", note=cause))
        if rng.random() < REOPENED_SHARE:
            reopened = resolved + rng.uniform(20, 240)
            steps.append(_Step(reopened, "reopened", "raiser", note="问题复发"))
            resolved = reopened + max(5.0, pace.lognormal(rng, 60, 0.6))
            steps.append(_Step(resolved, "resolved", "holder", note=cause))
        if rng.random() < pace.CLOSE_SHARE:
            steps.append(_Step(resolved + max(2.0, pace.lognormal(rng, 90, 0.8)), "closed",
                               "raiser"))
        return steps, False
