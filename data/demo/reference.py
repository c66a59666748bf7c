"""The demo plant's reference data: departments and people, the collaboration matrix, lines
and stations, suppliers and customers, locations with their dwell limits, materials; and the
ids it gives the rows it generates.

A plant edits these as data; the demo plant's history and live simulator draw on them.
"""
from __future__ import annotations

from dataclasses import dataclass

from data.models import Department, Location, Material, Person, SlaRule

# Ids of the generated rows, so that a new build can replace them: the history's and the
# live simulator's.
HISTORY_ID_PREFIX = "DEMO-"
LIVE_ID_PREFIX = "SIM-"
GENERATED_ID_PREFIXES = (HISTORY_ID_PREFIX, LIVE_ID_PREFIX)

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
# The locations that hold stock: what a lot has there when the history starts is its opening stock.
STOCK_LOCATIONS = frozenset({"RCV-01", "IQC-01", "WH-RM", "WH-AUX"}
                            | {f"{line}-LS" for line in LINE_BY_CODE})


def tables() -> dict:
    """The reference rows per model, as the demo plant writes them."""
    return {Department: _departments(), Person: _people(), SlaRule: _sla_rules(),
            Location: _locations(), Material: _materials()}


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
