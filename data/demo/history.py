"""A reproducible demo plant: reference data and weeks of floor history that tell one story.

The story is the reference case of site management: once every department works from one
live wall, the median response to a floor problem falls from about four hours to about a
quarter of an hour. Nights stay slower than days, a few department pairs keep passing
issues back and forth, a supplier problem brings a burst of material shortages, and at the
end the plant is alive: open issues, overdue ones, lots stuck at IQC and at the line side.

Same seed and same end give the same rows. A build replaces the generated history (issues
and movements whose ids start with DEMO- or SIM-, and the plan of the demo lines) and
leaves rows imported from elsewhere alone.
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Iterator

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.engine import Engine

from data import store, timezones
from data.models import (
    Department, Issue, IssueEvent, Location, Material, Movement, Person, ProductionPlan, SlaRule,
)
from data.demo.simulator import (
    CLOSE_SHARE, DAY_START, DAY_WEIGHT, HARD_SHARE, NIGHT_START, NIGHT_WEIGHT,
    RESPONSE_MEDIAN_MIN, WORKING_SHARE, ID_PREFIX as SIMULATOR_ID_PREFIX, escalation_note,
    is_night, lognormal, response_median_min,
)

ID_PREFIX = "DEMO-"
GENERATED_ID_PREFIXES = (ID_PREFIX, SIMULATOR_ID_PREFIX)

DEPARTMENTS = (
    ("PRD", "生产部", "Production"),
    ("PLN", "计划部", "Planning"),
    ("PUR", "采购部", "Procurement"),
    ("WH", "仓储物流部", "Warehouse"),
    ("QA", "质量部", "Quality"),
    ("MNT", "设备维修部", "Maintenance"),
    ("SAL", "销售与售后部", "Sales & After-sales"),
    ("ENG", "工程技术部", "Engineering"),
    ("EHS", "安全环保部", "EHS (Safety)"),
)

# (name, instant-messaging handle) per department.
PEOPLE = {
    "PRD": (("张伟", "zhangwei"), ("王芳", "wangfang"), ("李强", "liqiang"), ("刘洋", "liuyang"),
            ("陈静", "chenjing"), ("赵磊", "zhaolei")),
    "PLN": (("孙丽", "sunli"), ("周杰", "zhoujie"), ("吴敏", "wumin")),
    "PUR": (("郑浩", "zhenghao"), ("冯雪", "fengxue"), ("何军", "hejun")),
    "WH": (("马超", "machao"), ("朱琳", "zhulin"), ("胡斌", "hubin"), ("郭亮", "guoliang")),
    "QA": (("林娜", "linna"), ("高翔", "gaoxiang"), ("罗红", "luohong"), ("梁宇", "liangyu")),
    "MNT": (("宋涛", "songtao"), ("谢鹏", "xiepeng"), ("韩冰", "hanbing"), ("唐勇", "tangyong")),
    "SAL": (("许婷", "xuting"), ("邓超", "dengchao"), ("曹颖", "caoying")),
    "ENG": (("彭飞", "pengfei"), ("曾珊", "zengshan"), ("萧然", "xiaoran")),
    "EHS": (("田野", "tianye"), ("董洁", "dongjie")),
}


@dataclass(frozen=True)
class Rule:
    issue_type: str
    name_zh: str
    name_en: str
    owner: str
    notify: str
    ack_minutes: float
    resolve_minutes: float


# The collaboration matrix: owner, who must be told, response and resolution limits.
SLA_RULES = (
    Rule("production_plan_change", "生产计划变更", "Production plan change", "PLN", "PUR;WH", 30, 240),
    Rule("material_receipt", "物料入库异常", "Material receipt", "WH", "QA", 20, 240),
    Rule("quality_anomaly", "质量异常", "Quality anomaly", "QA", "PRD;ENG;WH;PUR", 10, 240),
    Rule("customer_complaint", "客户投诉", "Customer complaint", "SAL", "PRD;QA", 120, 2880),
    Rule("material_shortage", "物料短缺", "Material shortage", "WH", "PUR;PLN;PRD", 15, 120),
    Rule("equipment_failure", "设备故障", "Equipment failure", "MNT", "PRD", 10, 240),
    Rule("safety_hazard", "安全隐患", "Safety hazard", "EHS", "PRD", 5, 480),
    Rule("technical_question", "技术问题", "Technical question", "ENG", "PRD", 30, 480),
)
RULES = {rule.issue_type: rule for rule in SLA_RULES}
DEPARTMENT_NAMES = {code: name_zh for code, name_zh, _ in DEPARTMENTS}


@dataclass(frozen=True)
class Line:
    code: str
    product: str
    product_name: str
    unit: str
    planned_per_shift: int
    attainment: float


LINES = (
    Line("L1", "FG-A100", "智能温控器", "台", 1200, 0.97),
    Line("L2", "FG-B200", "LED 驱动电源", "台", 1000, 0.93),
    Line("L3", "FG-C300", "工业传感器模组", "pcs", 700, 0.85),
    Line("L4", "FG-D400", "控制面板总成", "套", 500, 0.91),
)
LINE_BY_CODE = {line.code: line for line in LINES}
STATIONS = (("ST1", "上料"), ("ST2", "装配"), ("ST3", "测试包装"))

SUPPLIERS = (
    ("SUP-HL", "昆山华力五金"), ("SUP-HT", "宁波恒通塑胶"), ("SUP-LC", "东莞联创电子"),
    ("SUP-RD", "无锡瑞达包装"), ("SUP-JT", "常州金泰化工"),
)
CUSTOMERS = (("CUS-01", "华东经销中心"), ("CUS-02", "美达家电集团"), ("CUS-03", "Nordic Controls AB"))

# Dwell limits (minutes) where material must not wait: the rest of the path has none.
MAX_DWELL_MINUTES = {"receiving": 240, "iqc": 1440, "warehouse": 20160, "line_side": 720}
# The night shift plans a little less than the day shift.
NIGHT_PLAN_SHARE = 0.9
# Lots held at IQC for a decision, rejected in part, and lots whose tail is left at the line.
IQC_HOLD_SHARE, IQC_REJECT_SHARE, REMNANT_SHARE = 0.04, 0.03, 0.15
# Days a lot waits in the warehouse before the lines draw on it, before and after the wall:
# less stock for the same output is the material turnover the article reports.
WAREHOUSE_DAYS_BEFORE, WAREHOUSE_DAYS_AFTER = 4.5, 3.2


@dataclass(frozen=True)
class RawMaterial:
    code: str
    name: str
    unit: str
    category: str
    supplier: str
    usage: dict            # line -> quantity per unit of the line's product
    lot_days: float        # days between deliveries
    warehouse: str


def _raw(code, name, unit, category, supplier, usage, lot_days):
    warehouse = "WH-AUX" if category in ("包材", "化工辅料") else "WH-RM"
    return RawMaterial(code, name, unit, category, supplier, usage, lot_days, warehouse)


def _every_line(per_unit: float) -> dict:
    return dict.fromkeys(LINE_BY_CODE, per_unit)


RAW_MATERIALS = (
    _raw("M-1001", "M4×10 螺钉", "pcs", "五金件", "SUP-HL", {"L1": 4, "L2": 6, "L4": 8}, 3),
    _raw("M-1002", "弹簧垫圈 Φ4", "pcs", "五金件", "SUP-HL", {"L1": 4, "L2": 6}, 4),
    _raw("M-1003", "铜端子 2.8mm", "pcs", "五金件", "SUP-HL", {"L2": 4, "L3": 2}, 3),
    _raw("M-1004", "不锈钢安装支架", "pcs", "五金件", "SUP-HL", {"L4": 2}, 3),
    _raw("M-1005", "铝压铸外壳", "pcs", "五金件", "SUP-HL", {"L2": 1}, 2),
    _raw("M-2001", "ABS 前壳", "pcs", "塑胶件", "SUP-HT", {"L1": 1}, 2),
    _raw("M-2002", "ABS 后盖", "pcs", "塑胶件", "SUP-HT", {"L1": 1}, 2),
    _raw("M-2003", "PC 透镜", "pcs", "塑胶件", "SUP-HT", {"L3": 1}, 3),
    _raw("M-2004", "硅胶按键", "pcs", "塑胶件", "SUP-HT", {"L1": 1, "L4": 4}, 3),
    _raw("M-2005", "PA66 粒料", "kg", "塑胶原料", "SUP-HT", {"L4": 0.05}, 5),
    _raw("M-3001", "主控 PCBA", "pcs", "电子料", "SUP-LC", {"L1": 1, "L4": 1}, 2),
    _raw("M-3002", "电源模块 12V", "pcs", "电子料", "SUP-LC", {"L2": 1}, 2),
    _raw("M-3003", "线束总成", "pcs", "电子料", "SUP-LC", {"L2": 1, "L4": 2}, 2),
    _raw("M-3004", "LED 灯板", "pcs", "电子料", "SUP-LC", {"L3": 1}, 2),
    _raw("M-3005", "NTC 温度传感器", "pcs", "电子料", "SUP-LC", {"L1": 1, "L3": 2}, 3),
    _raw("M-3006", "2.4 寸液晶屏", "pcs", "电子料", "SUP-LC", {"L1": 1, "L4": 1}, 3),
    _raw("M-4001", "彩盒", "pcs", "包材", "SUP-RD", {"L1": 1, "L2": 1, "L3": 1}, 4),
    _raw("M-4002", "五层瓦楞外箱", "pcs", "包材", "SUP-RD",
         {"L1": 0.05, "L2": 0.05, "L3": 0.05, "L4": 0.1}, 6),
    _raw("M-4003", "EPE 珍珠棉内衬", "pcs", "包材", "SUP-RD", _every_line(1), 4),
    _raw("M-4004", "产品说明书", "pcs", "包材", "SUP-RD", _every_line(1), 6),
    _raw("M-4005", "条码标签纸", "卷", "包材", "SUP-RD", _every_line(0.002), 7),
    _raw("M-5001", "导热硅脂", "支", "化工辅料", "SUP-JT", {"L2": 0.01}, 7),
    _raw("M-5002", "三防漆", "桶", "化工辅料", "SUP-JT", {"L2": 0.002, "L3": 0.002}, 7),
    _raw("M-5003", "螺纹胶", "支", "化工辅料", "SUP-JT", {"L4": 0.01}, 7),
    _raw("M-5004", "IPA 清洗剂", "瓶", "化工辅料", "SUP-JT", _every_line(0.002), 7),
)
PRODUCT_CATEGORY = "成品"

# ---- the issue story ------------------------------------------------------------------

ISSUES_PER_DAY = 70
SUNDAY_WEIGHT = 0.75
# Median response (minutes) before the wall; once it is daily work, the live plant's pace.
RESPONSE_BEFORE_MIN = 240.0
# Work after acknowledging, as a share of the resolve limit, before the wall.
WORKING_SHARE_BEFORE = 0.9
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


def build_demo_plant(engine: Engine, *, days: int = 90, seed: int = 7,
                     end: datetime | None = None) -> dict[str, int]:
    """Write the demo plant: reference tables and `days` of history ending at `end`.

    One transaction: the wall never sees half a plant. Returns the rows written per table.
    """
    if days < 1:
        raise ValueError(f"days must be at least 1, got {days}")
    if end is None:
        end = timezones.utc_now().replace(minute=0, second=0, microsecond=0)
    elif end.tzinfo is None:
        raise ValueError(f"naive end {end!r}; pass an aware instant")
    end = end.astimezone(timezones.UTC)
    plant = _Plant(seed, end - timedelta(days=days), end, timezones.site_zone())
    tables = {
        Department: _departments(), Person: _people(), SlaRule: _sla_rules(),
        Location: _locations(), Material: _materials(),
    }
    tables[Issue], tables[IssueEvent] = plant.issues()
    shifts = plant.shifts()
    tables[ProductionPlan] = plant.production_plan(shifts)
    tables[Movement] = plant.movements(shifts)
    with engine.begin() as conn:
        _forget_generated_history(conn)
        for model, rows in tables.items():
            store.upsert_rows(conn, model, rows)
    return {model.__tablename__: len(rows) for model, rows in tables.items()}


def is_empty(engine: Engine) -> bool:
    """No issues and no departments: a database nobody has filled yet."""
    with engine.connect() as conn:
        issues = conn.execute(select(exists().where(Issue.id.is_not(None)))).scalar()
        departments = conn.execute(select(exists().where(Department.code.is_not(None)))).scalar()
    return not issues and not departments


def _generated(column):
    return or_(*(column.startswith(prefix, autoescape=True) for prefix in GENERATED_ID_PREFIXES))


def _forget_generated_history(conn) -> None:
    """Remove an earlier demo or simulator history, so a new build replaces it."""
    conn.execute(delete(IssueEvent).where(_generated(IssueEvent.issue_id)))
    conn.execute(delete(Issue).where(_generated(Issue.id)))
    conn.execute(delete(Movement).where(_generated(Movement.id)))
    conn.execute(delete(ProductionPlan).where(ProductionPlan.line.in_(list(LINE_BY_CODE))))
    store.rebuild_lot_stock(conn)


# ---- reference tables -----------------------------------------------------------------

def _departments() -> list[dict]:
    return [{"code": code, "name_zh": zh, "name_en": en} for code, zh, en in DEPARTMENTS]


def person_id(department: str, number: int) -> str:
    return f"{department}-{number:02d}"


def _people() -> list[dict]:
    return [{"id": person_id(dept, n), "name": name, "department_code": dept, "im_handle": handle}
            for dept, people in PEOPLE.items() for n, (name, handle) in enumerate(people, start=1)]


def _sla_rules() -> list[dict]:
    return [{"issue_type": r.issue_type, "name_zh": r.name_zh, "name_en": r.name_en,
             "owner_department_code": r.owner, "notify_department_codes": r.notify,
             "ack_minutes": r.ack_minutes, "resolve_minutes": r.resolve_minutes}
            for r in SLA_RULES]


def station_code(line: str, station: str) -> str:
    return f"{line}-{station}"


def _location(code, name, kind, line=None):
    return {"code": code, "name": name, "kind": kind, "line": line,
            "max_dwell_minutes": MAX_DWELL_MINUTES.get(kind)}


def _locations() -> list[dict]:
    rows = [_location(code, name, "supplier") for code, name in SUPPLIERS]
    rows += [_location("RCV-01", "收货区", "receiving"), _location("IQC-01", "来料检验区", "iqc"),
             _location("WH-RM", "原材料仓", "warehouse"), _location("WH-AUX", "辅料包材仓", "warehouse")]
    for line in LINES:
        rows.append(_location(f"{line.code}-LS", f"{line.code} 线边库", "line_side", line.code))
        rows += [_location(station_code(line.code, st), f"{line.code} 工位 {st[-1]} {name}", "wip",
                           line.code) for st, name in STATIONS]
        rows.append(_location(f"{line.code}-USE", f"{line.code} 投料产出点", "consumption", line.code))
    rows += [_location("FG-01", "成品仓", "finished"), _location("SCR-01", "不良品报废区", "scrap")]
    rows += [_location(code, name, "customer") for code, name in CUSTOMERS]
    return rows


def _materials() -> list[dict]:
    rows = [{"code": m.code, "name": m.name, "unit": m.unit, "category": m.category}
            for m in RAW_MATERIALS]
    rows += [{"code": line.product, "name": line.product_name, "unit": line.unit,
              "category": PRODUCT_CATEGORY} for line in LINES]
    return rows


# ---- history --------------------------------------------------------------------------

def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def _pick(rng: random.Random, weights: dict):
    return rng.choices(list(weights), weights=list(weights.values()))[0]


@dataclass
class _Step:
    minute: float
    kind: str
    actor: str | None          # "holder", "raiser" or None (the system)
    to_department: str | None = None
    note: str | None = None


@dataclass(frozen=True)
class _Episode:
    """A supplier that stops delivering for a while: its lots arrive late, lines run short."""
    supplier: str
    start: datetime
    end: datetime


class _Plant:
    def __init__(self, seed: int, start: datetime, end: datetime, tz):
        self.seed, self.start, self.end, self.tz = seed, start, end, tz
        self.minutes = (end - start).total_seconds() / 60
        self.episodes = self._episodes(random.Random(f"{seed}:episodes"))

    def rng(self, part: str) -> random.Random:
        return random.Random(f"{self.seed}:{part}")

    def at(self, minute: float) -> datetime:
        return self.start + timedelta(seconds=round(minute * 60))

    def progress(self, at: datetime) -> float:
        """How far the wall's adoption has come: 0 before, 1 once it is daily work."""
        return _smoothstep(((at - self.start) / (self.end - self.start) - 0.15) / 0.7)

    def is_night(self, at: datetime) -> bool:
        return is_night(at, self.tz)

    def _episodes(self, rng: random.Random) -> list[_Episode]:
        days = (self.end - self.start).days
        episodes = []
        for _ in range(max(1, round(days / 15))):
            begin = self.start + timedelta(days=rng.uniform(1, max(1.5, days - 3)))
            length = timedelta(days=rng.uniform(1.5, 3))
            supplier = rng.choice(SUPPLIERS)[0]
            episodes.append(_Episode(supplier, begin, min(begin + length, self.end)))
        return sorted(episodes, key=lambda e: e.start)

    def episode_at(self, at: datetime) -> _Episode | None:
        return next((e for e in self.episodes if e.start <= at < e.end), None)

    # -- issues --

    def _rate_per_minute(self, at: datetime) -> tuple[float, float]:
        """(everyday issues, shortage burst) per minute at this instant."""
        local = at.astimezone(self.tz)
        weight = NIGHT_WEIGHT if self.is_night(at) else DAY_WEIGHT
        if local.weekday() == 6:
            weight *= SUNDAY_WEIGHT
        burst = SHORTAGE_BURST_PER_HOUR / 60 * weight if self.episode_at(at) else 0.0
        return ISSUES_PER_DAY / 1440 * weight, burst

    def issues(self) -> tuple[list[dict], list[dict]]:
        rng = self.rng("issues")
        ceiling = (ISSUES_PER_DAY / 1440 + SHORTAGE_BURST_PER_HOUR / 60) * DAY_WEIGHT
        issues, events, per_day = [], [], {}
        minute = 0.0
        while True:
            minute += rng.expovariate(ceiling)
            if minute >= self.minutes:
                break
            raised = self.at(minute)
            everyday, burst = self._rate_per_minute(raised)
            draw = rng.random() * ceiling
            if draw >= everyday + burst:
                continue
            episode = self.episode_at(raised) if draw >= everyday else None
            day = raised.astimezone(self.tz).strftime("%y%m%d")
            per_day[day] = per_day.get(day, 0) + 1
            issue, issue_events = self._issue(rng, f"{ID_PREFIX}{day}-{per_day[day]:03d}",
                                              raised, episode)
            issues.append(issue)
            events += issue_events
        return issues, events

    def _context(self, rng: random.Random, issue_type: str, episode: _Episode | None) -> dict:
        line = rng.choice(LINES)
        if episode is not None:
            materials = [m for m in RAW_MATERIALS if m.supplier == episode.supplier]
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
               episode: _Episode | None) -> tuple[dict, list[dict]]:
        issue_type = "material_shortage" if episode else _pick(rng, TYPE_WEIGHTS)
        rule = RULES[issue_type]
        severity = rng.choices(("P1", "P2", "P3", "P4"),
                               SEVERITY_WEIGHTS.get(issue_type, DEFAULT_SEVERITY_WEIGHTS))[0]
        context = self._context(rng, issue_type, episode)
        raising = rng.choice(RAISED_BY[issue_type])
        raiser = person_id(raising, rng.randint(1, len(PEOPLE[raising])))
        title = rng.choice(TITLES[issue_type]).format(**context)
        cause = (f"供应商{context['supplier']}交货延迟" if episode
                 else rng.choice(CAUSES[issue_type]))
        steps, cancelled = self._life(rng, rule, severity, raised, cause)
        events, holder = [], rule.owner
        last = None
        for step in sorted(steps, key=lambda s: s.minute):
            at = raised + timedelta(seconds=round(step.minute * 60))
            if last is not None and at <= last:
                at = last + timedelta(seconds=1)
            if at > self.end:
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
            **_state(events, cancelled), "owner_department_code": holder,
        }
        return issue, events

    def _life(self, rng: random.Random, rule: Rule, severity: str, raised: datetime,
              cause: str) -> tuple[list[_Step], bool]:
        """Every step the issue will take, in minutes after it was raised."""
        adoption = self.progress(raised)
        steps = [_Step(0, "raised", "raiser")]
        if rng.random() < CANCELLED_SHARE:
            minute = rng.uniform(3, 60)
            if rng.random() < 0.5:
                steps.append(_Step(minute / 2, "acknowledged", "holder"))
            steps.append(_Step(minute, "closed", "raiser", note="重复上报，取消"))
            return steps, True
        median = response_median_min(rule.ack_minutes, severity, self.is_night(raised),
                                     base=RESPONSE_BEFORE_MIN ** (1 - adoption)
                                     * RESPONSE_MEDIAN_MIN ** adoption)
        ack = max(0.5, lognormal(rng, median, 0.6))
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
            minute += lognormal(rng, 12 * (1.5 - adoption), 0.6)
            steps.append(_Step(minute, "reassigned", "holder", department, note))
        ack += minute
        steps.append(_Step(ack, "acknowledged", "holder"))
        if ack > rule.ack_minutes:
            steps.append(_Step(rule.ack_minutes, "escalated", None,
                               note=escalation_note("ack", rule.ack_minutes)))
        share = WORKING_SHARE_BEFORE ** (1 - adoption) * WORKING_SHARE ** adoption
        working = lognormal(rng, rule.resolve_minutes * share, 0.6)
        comments = [rng.choice(COMMENTS) for _ in range(rng.choice((0, 0, 1, 1, 2)))]
        if rng.random() < HARD_SHARE:
            working *= rng.uniform(3, 8)
            comments.append(rng.choice(WAITING))
        resolved = ack + max(2.0, working)
        for note in comments:
            steps.append(_Step(rng.uniform(ack, resolved), "commented", "holder", note=note))
        if resolved > rule.resolve_minutes:
            steps.append(_Step(rule.resolve_minutes, "escalated", None,
                               note=escalation_note("resolve", rule.resolve_minutes)))
        steps.append(_Step(resolved, "resolved", "holder", note=cause))
        if rng.random() < REOPENED_SHARE:
            reopened = resolved + rng.uniform(20, 240)
            steps.append(_Step(reopened, "reopened", "raiser", note="问题复发"))
            resolved = reopened + max(5.0, lognormal(rng, 60, 0.6))
            steps.append(_Step(resolved, "resolved", "holder", note=cause))
        if rng.random() < CLOSE_SHARE:
            steps.append(_Step(resolved + max(2.0, lognormal(rng, 90, 0.8)), "closed", "raiser"))
        return steps, False

    # -- production plan --

    def shift_starts(self, since: datetime, until: datetime) -> Iterator[datetime]:
        """The 08:00 and 20:00 (site time) shift starts whose shift overlaps [since, until)."""
        day = since.astimezone(self.tz).date() - timedelta(days=1)
        while True:
            for hour in (DAY_START, NIGHT_START):
                begin = datetime.combine(day, hour, tzinfo=self.tz).astimezone(timezones.UTC)
                if begin >= until:
                    return
                if begin + SHIFT > since:
                    yield begin
            day += timedelta(days=1)

    def shifts(self) -> list[dict]:
        """Each line's shifts over the history, with what the whole shift will have made."""
        rng = self.rng("plan")
        rows = []
        for begin in self.shift_starts(self.start, self.end):
            for line in LINES:
                share = NIGHT_PLAN_SHARE if self.is_night(begin) else 1.0
                planned = round(line.planned_per_shift * share * rng.uniform(0.95, 1.05), -1)
                made = round(min(planned * 1.03, planned * lognormal(rng, line.attainment, 0.04)))
                rows.append({"line": line, "shift_start": begin, "planned_qty": planned,
                             "made": made})
        return rows

    def production_plan(self, shifts: list[dict]) -> list[dict]:
        """Planned vs actual per line and shift; the running shift reports its actual so far."""
        rows = []
        for shift in shifts:
            begin = shift["shift_start"]
            actual = shift["made"] * min(1.0, (self.end - begin) / SHIFT)
            rows.append({"line": shift["line"].code, "shift_start": begin,
                         "shift_end": begin + SHIFT, "planned_qty": float(shift["planned_qty"]),
                         "actual_qty": float(round(actual))})
        return rows

    # -- movements --

    def movements(self, shifts: list[dict]) -> list[dict]:
        """Every move up to the end, numbered in time order."""
        moves = self._raw_material_moves(self.rng("material"))
        moves += self._product_moves(self.rng("product"), shifts)
        moves = [m for m in moves if m["at"] <= self.end]
        moves.sort(key=lambda m: (m["at"], m["lot"], m["from_location_code"],
                                  m["to_location_code"]))
        return [{"id": f"{ID_PREFIX}M{n:07d}", **move} for n, move in enumerate(moves, start=1)]

    def _raw_material_moves(self, rng: random.Random) -> list[dict]:
        """Lots from twelve days before the history on; what was in stock at its start is
        booked as opening stock, so the history begins with full warehouses."""
        moves, forced = [], {"iqc": 2, "line_side": 2}
        for material in RAW_MATERIALS:
            daily = {line.code: material.usage[line.code] * line.planned_per_shift
                     * (1 + NIGHT_PLAN_SHARE) * line.attainment
                     for line in LINES if line.code in material.usage}
            arrival = self.start - OPENING_LEAD + timedelta(days=rng.uniform(0, material.lot_days))
            number = 0
            while arrival < self.end:
                number += 1
                interval = material.lot_days * rng.uniform(0.85, 1.15)
                qty = math.ceil(sum(daily.values()) * interval * rng.uniform(1.0, 1.08))
                lot = f"{material.code[2:]}-{arrival.astimezone(self.tz):%y%m%d}-{number:03d}"
                lot_moves = self._lot_moves(rng, material, lot, qty, arrival, daily, forced)
                moves += self._opened(lot_moves, material.supplier)
                arrival += timedelta(days=interval)
        return moves

    def _opened(self, lot_moves: list[dict], supplier: str) -> list[dict]:
        """A lot's moves from the start of the history, with its stock then as opening stock."""
        before = [m for m in lot_moves if m["at"] < self.start]
        if not before:
            return lot_moves
        balance: dict[str, float] = {}
        for move in before:
            into, out_of = move["to_location_code"], move["from_location_code"]
            balance[into] = balance.get(into, 0) + move["qty"]
            balance[out_of] = balance.get(out_of, 0) - move["qty"]
        opening = [_move(self.start, before[0]["material_code"], before[0]["lot"], qty, supplier,
                         location, OPENING_REF)
                   for location, qty in sorted(balance.items())
                   if qty > 0 and location in STOCK_LOCATIONS]
        return opening + [m for m in lot_moves if m["at"] >= self.start]

    def _lot_moves(self, rng: random.Random, material: RawMaterial, lot: str, qty: int,
                   arrival: datetime, daily: dict, forced: dict) -> list[dict]:
        """One lot's path: supplier, receiving, IQC, warehouse, then shift by shift to the
        line sides until it is used up."""
        episode = next((e for e in self.episodes if e.supplier == material.supplier
                        and e.start <= arrival < e.end), None)
        if episode is not None:
            arrival = episode.end + _hours(rng.uniform(0, 8))
        adoption = self.progress(max(arrival, self.start))
        slow = 1.6 - 0.6 * adoption     # receiving and IQC also speed up with the wall
        into_iqc = arrival + _hours(rng.uniform(0.3, 2.5) * slow)
        into_warehouse = into_iqc + _hours(rng.uniform(2, 12) * slow)
        if forced["iqc"] and self.end - _hours(60) <= into_iqc <= self.end - _hours(26):
            forced["iqc"] -= 1
            into_warehouse = self.end + _hours(rng.uniform(2, 24))
        elif rng.random() < IQC_HOLD_SHARE:
            into_warehouse += _hours(rng.uniform(26, 70))
        code = material.code
        moves = [
            _move(arrival, code, lot, qty, material.supplier, "RCV-01",
                  f"PO{arrival.astimezone(self.tz):%y%m%d}-{code[2:]}"),
            _move(into_iqc, code, lot, qty, "RCV-01", "IQC-01"),
        ]
        if rng.random() < IQC_REJECT_SHARE:
            rejected = max(1, round(qty * rng.uniform(0.05, 0.2)))
            moves.append(_move(into_warehouse - timedelta(minutes=5), code, lot, rejected,
                               "IQC-01", "SCR-01"))
            qty -= rejected
        moves.append(_move(into_warehouse, code, lot, qty, "IQC-01", material.warehouse))
        waits = WAREHOUSE_DAYS_BEFORE + (WAREHOUSE_DAYS_AFTER - WAREHOUSE_DAYS_BEFORE) * adoption
        first_draw = into_warehouse + timedelta(days=lognormal(rng, waits, 0.25))
        remaining = qty
        for shift in self.shift_starts(first_draw + SHIFT, self.end + SHIFT):
            for line in sorted(daily):
                portion = min(remaining, max(1, round(daily[line] / 2 * rng.uniform(0.9, 1.1))))
                remaining -= portion
                moves += self._portion_moves(rng, material, lot, line, portion, shift,
                                             remaining == 0, forced)
                if remaining == 0:
                    return moves
        return moves

    def _portion_moves(self, rng: random.Random, material: RawMaterial, lot: str, line: str,
                       portion: int, shift: datetime, last: bool, forced: dict) -> list[dict]:
        """A shift's portion: kitted to the line side, used in two goes; the tail of a lot
        is sometimes left behind, the line-side material the wall calls stagnant."""
        line_side, use = f"{line}-LS", f"{line}-USE"
        delivered = shift - timedelta(minutes=rng.uniform(15, 90))
        order = f"WO-{line}-{_shift_label(shift, self.tz)}"
        moves = [_move(delivered, material.code, lot, portion, material.warehouse, line_side,
                       order)]
        rest = portion
        if portion >= 2:
            used = round(portion * rng.uniform(0.4, 0.6))
            moves.append(_move(shift + _hours(rng.uniform(2, 6)), material.code, lot, used,
                               line_side, use, order))
            rest -= used
        finished = shift + _hours(rng.uniform(8, 11.5))
        recent = self.end - _hours(48) <= delivered <= self.end - _hours(14)
        if last and forced["line_side"] and recent:
            forced["line_side"] -= 1
            finished = self.end + _hours(rng.uniform(1, 24))
        elif last and rng.random() < REMNANT_SHARE:
            finished = shift + _hours(rng.uniform(14, 60))
        moves.append(_move(finished, material.code, lot, rest, line_side, use, order))
        return moves

    def _product_moves(self, rng: random.Random, shifts: list[dict]) -> list[dict]:
        """A product lot per line and shift: made at the last station in three batches,
        defects scrapped, the rest to finished goods and shipped within a day or so."""
        moves = []
        for shift in shifts:
            line, begin, made = shift["line"], shift["shift_start"], shift["made"]
            if begin < self.start or made < 3:
                continue
            label = _shift_label(begin, self.tz)
            lot, order = f"{line.code}-{label}", f"WO-{line.code}-{label}"
            station = station_code(line.code, STATIONS[-1][0])
            batch = made // 3
            for at, qty in ((begin + _hours(4), batch), (begin + _hours(8), batch),
                            (begin + SHIFT - timedelta(minutes=10), made - 2 * batch)):
                moves.append(_move(at, line.product, lot, qty, f"{line.code}-USE", station, order))
            finish = begin + SHIFT
            scrapped = round(made * rng.uniform(0.005, 0.025))
            if scrapped:
                moves.append(_move(finish + timedelta(minutes=15), line.product, lot, scrapped,
                                   station, "SCR-01", order))
            moves.append(_move(finish + timedelta(minutes=rng.uniform(30, 120)), line.product, lot,
                               made - scrapped, station, "FG-01", order))
            moves.append(_move(finish + _hours(rng.uniform(6, 30)), line.product, lot,
                               made - scrapped, "FG-01", rng.choice(CUSTOMERS)[0],
                               f"SO-{label}-{line.code}"))
        return moves


SHIFT = timedelta(hours=12)
OPENING_LEAD = timedelta(days=12)
OPENING_REF = "OPENING 期初库存"
STOCK_LOCATIONS = frozenset({"RCV-01", "IQC-01", "WH-RM", "WH-AUX"}
                            | {f"{line}-LS" for line in LINE_BY_CODE})


def _hours(value: float) -> timedelta:
    return timedelta(hours=value)


def _shift_label(begin: datetime, tz) -> str:
    local = begin.astimezone(tz)
    return f"{local:%y%m%d}{'D' if DAY_START <= local.time() < NIGHT_START else 'N'}"


def _move(at: datetime, material: str, lot: str, qty: float, source: str, destination: str,
          order: str | None = None) -> dict:
    return {"at": at.replace(microsecond=0), "material_code": material, "lot": lot,
            "qty": float(qty), "from_location_code": source, "to_location_code": destination,
            "order_ref": order}


def _state(events: list[dict], cancelled: bool) -> dict:
    """An issue's columns as its events (up to the end of the history) leave it."""
    state = {"status": "open", "acknowledged_at": None, "resolved_at": None, "closed_at": None,
             "cause": None}
    for event in events:
        kind = event["kind"]
        if kind == "acknowledged":
            state["acknowledged_at"] = state["acknowledged_at"] or event["at"]
            state["status"] = "acknowledged"
        elif kind == "resolved":
            state.update(resolved_at=event["at"], status="resolved", cause=event["note"])
        elif kind == "reopened":
            state.update(resolved_at=None, status="acknowledged")
        elif kind == "closed":
            state.update(closed_at=event["at"], status="cancelled" if cancelled else "closed")
    return state
