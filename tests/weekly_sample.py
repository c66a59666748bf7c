"""A weekly review pack as data/reports/weekly.py builds it (the SCHEMA of its docstring),
written by hand: the renderers' tests draw from it without a database, and can give any
field a hostile value."""
from __future__ import annotations

from datetime import date, timedelta

WEEK = "2026-W48"
SINCE = "2026-11-23T00:00:00+08:00"
UNTIL = "2026-11-30T00:00:00+08:00"

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
TYPES = (
    ("equipment_failure", "设备故障", "Equipment failure", "MNT", 10),
    ("material_shortage", "物料短缺", "Material shortage", "WH", 15),
    ("quality_anomaly", "质量异常", "Quality anomaly", "QA", 10),
    ("production_plan_change", "生产计划变更", "Production plan change", "PLN", 30),
    ("material_receipt", "物料入库异常", "Material receipt", "WH", 20),
    ("technical_question", "技术问题", "Technical question", "ENG", 30),
    ("safety_hazard", "安全隐患", "Safety hazard", "EHS", 5),
    ("customer_complaint", "客户投诉", "Customer complaint", "SAL", 120),
)
_NAMES = {code: (zh, en) for code, zh, en in DEPARTMENTS}
_TITLES = ("L2 贴片机吸嘴堵塞", "来料电阻批次不符", "温控器外壳划伤", "L3 换线物料未到", "叉车通道堵塞",
           "AOI 误报率升高", "包装箱尺寸错误", "客户退货 12 台", "模具温度异常", "安全门联锁失效")


def _kpi(key, zh, en, unit, this, last, avg4, better, signal=False):
    delta = None if this is None or last is None else round(this - last, 4)
    good = None if not delta else (delta < 0) == (better == "lower")
    return {"key": key, "name_zh": zh, "name_en": en, "unit": unit, "this": this, "last": last,
            "avg4": avg4, "delta": delta, "better": better, "good": good, "signal": signal}


def _issue_row(n: int, raised_day: int, **extra) -> dict:
    type_code, type_zh, type_en, owner, limit = TYPES[n % len(TYPES)]
    issue_id = f"DEMO-{4210 + n}"
    return {"id": issue_id, "title": _TITLES[n % len(_TITLES)], "type_zh": type_zh, "type_en": type_en,
            "owner_code": owner, "owner_zh": _NAMES[owner][0], "owner_en": _NAMES[owner][1],
            "raised_at": f"2026-11-{23 + raised_day:02d}T{8 + n % 9:02d}:{(7 * n) % 60:02d}:00+08:00",
            "limit_min": limit, "trace": f"/issue/{issue_id}", **extra}


def pack() -> dict:
    """The pack of a busy week: every list about ten rows long, Chinese names and titles."""
    days = [date(2026, 10, 26) + timedelta(days=i) for i in range(35)]
    response = [14 + (i % 7) * 1.5 - (4 if i >= 28 else 0) for i in range(35)]
    sla = [0.82 + (i % 5) * 0.02 + (0.05 if i >= 30 else 0) for i in range(35)]
    return {
        "schema": 1, "week": WEEK, "since": SINCE, "until": UNTIL,
        "as_of": "2026-11-30T06:00:00+08:00", "built_at": "2026-11-30T06:02:11+08:00",
        "tz": "Asia/Shanghai",
        "kpis": [
            _kpi("raised", "发起", "raised", "count", 212, 236, 228.5, "lower"),
            _kpi("response_median_min", "响应时长中位数（分）", "response median (min)", "min",
                 12.5, 16.25, 15.8, "lower", signal=True),
            _kpi("response_p90_min", "响应时长 P90（分）", "response p90 (min)", "min", 48.75, 45.0, 51.2, "lower"),
            _kpi("resolution_median_min", "解决时长中位数（分）", "resolution median (min)", "min",
                 187.0, 174.5, 180.25, "lower"),
            _kpi("response_sla_compliance", "响应达成率", "response SLA compliance", "ratio",
                 0.8868, 0.8305, 0.8412, "higher", signal=True),
            _kpi("resolution_sla_compliance", "解决达成率", "resolution SLA compliance", "ratio",
                 0.7311, 0.7501, 0.7422, "higher"),
            _kpi("resolution_rate", "解决率", "resolution rate", "ratio", 0.9151, 0.9011, 0.9077, "higher"),
            _kpi("overdue", "截至时点超时", "overdue at as_of", "count", 7, 7, 9.25, "lower"),
            _kpi("handoffs_mean", "平均转派次数", "hand-offs per issue", "count", 0.3821, 0.4407, 0.4102, "lower"),
            _kpi("plan_attainment", "计划达成率", "plan attainment", "ratio", 0.9342, None, 0.9287, "higher"),
        ],
        "departments": [
            {"code": code, "name_zh": zh, "name_en": en, "raised": 40 - 4 * rank,
             "response_median_min": 8.5 + 2.25 * rank, "response_sla_compliance": round(0.97 - 0.03 * rank, 4),
             "resolution_rate": round(0.98 - 0.02 * rank, 4), "ping_pong": rank // 3, "rank": rank + 1}
            for rank, (code, zh, en) in enumerate(DEPARTMENTS)
        ],
        "star": {"code": "MNT", "name_zh": "设备维修部", "name_en": "Maintenance",
                 "why_zh": "响应最快且无来回转派", "why_en": "fastest response and no ping-pong",
                 "raised": 31, "response_median_min": 6.5, "response_sla_compliance": 0.9677},
        "worst_breaches": [
            _issue_row(n, n % 7, response_min=limit + 95 - 8 * n, over_min=95 - 8 * n)
            for n, limit in ((n, TYPES[n % len(TYPES)][4]) for n in range(10))
        ],
        "longest_open": [
            _issue_row(n + 10, n % 5, open_min=9000 - 640 * n, overdue=n < 6, acknowledged=n % 3 > 0)
            for n in range(10)
        ],
        "ping_pong": [
            _issue_row(n + 20, n % 7, hops=["PRD", "QA", "PRD", "ENG", "PRD"][: 3 + n % 3], handoffs=2 + n % 3)
            for n in range(10)
        ],
        "pareto": {
            "types": [{"code": code, "name_zh": zh, "name_en": en, "this": 52 - 6 * i, "avg4": 47.5 - 5 * i}
                      for i, (code, zh, en, _, _) in enumerate(TYPES)],
            "locations": [{"code": f"L{i % 4 + 1}-S{i:02d}", "name_zh": f"L{i % 4 + 1} 工位 {i + 1}",
                           "name_en": f"L{i % 4 + 1} station {i + 1}", "this": 30 - 3 * i, "avg4": 26.25 - 2 * i}
                          for i in range(10)],
            "causes": [{"code": code, "name_zh": zh, "name_en": en, "this": this, "avg4": avg4}
                       for code, zh, en, this, avg4 in (
                           ("wear", "磨损", "Wear", 34, 30.0), ("supplier", "供应商来料", "Supplier lot", 27, 22.5),
                           ("setup", "换线设置", "Changeover set-up", 19, 21.0), ("operator", "操作失误", "Operator error", 12, 14.25),
                           ("design", "设计问题", "Design", 6, 4.5), ("unknown", "原因未明", "Unknown", 3, 5.0))],
        },
        "escalations": [{"level": 1, "count": 41, "ack_median_min": 6.5},
                        {"level": 2, "count": 13, "ack_median_min": 18.25},
                        {"level": 3, "count": 4, "ack_median_min": 47.0},
                        {"level": 4, "count": 1, "ack_median_min": None}],
        "material": {
            "stagnant": [{"lot": f"LOT-2611{n:02d}", "material_code": f"RM-{310 + n}", "material_name": f"贴片电阻 {n + 1}k",
                          "location_code": ("IQC-01", "WH-RM", "LS-L2")[n % 3],
                          "location_name": ("来料检验区", "原材料库", "L2 线边库")[n % 3],
                          "qty": 1200.5 - 100 * n, "dwell_min": 7200 - 500 * n, "limit_min": 2880} for n in range(10)],
            "stagnant_total": 23,
            "turnover": 3.4187,
            "line_stops": [{"id": f"DEMO-{4300 + n}", "title": f"RM-{320 + n} 缺料停线", "line": f"L{n % 4 + 1}",
                            "location_code": f"L{n % 4 + 1}-S0{n % 5 + 1}",
                            "raised_at": f"2026-11-{23 + n % 7:02d}T{9 + n:02d}:15:00+08:00",
                            "response_min": 4 + n, "stop_min": 95 - 7 * n, "resolved": n != 3,
                            "trace": f"/issue/DEMO-{4300 + n}"} for n in range(10)],
        },
        "plan": [{"line": f"L{n // 2 + 1}", "shift_start": f"2026-11-{23 + n % 7:02d}T{8 if n % 2 == 0 else 20:02d}:00:00+08:00",
                  "planned": 1200 - 100 * n, "actual": 1150 - 110 * n,
                  "attainment": round((1150 - 110 * n) / (1200 - 100 * n), 4)} for n in range(10)],
        "actions": [
            {"id": 10 + n, "problem": ("L2 吸嘴堵塞反复", "来料检验等待过长", "夜班响应慢")[n % 3],
             "about": "DEMO-4210,DEMO-4214" if n % 2 == 0 else "response_median_min",
             "about_kpi": None if n % 2 == 0 else "response_median_min",
             "about_issues": ["DEMO-4210", "DEMO-4214"] if n % 2 == 0 else [],
             "countermeasure": ("每班清洁吸嘴并记录", "IQC 增加一名检验员", "夜班设值班组长")[n % 3],
             "owner": ("宋涛", "林娜", "张伟")[n % 3], "department_code": ("MNT", "QA", "PRD")[n % 3],
             "due": (date(2026, 11, 20) + timedelta(days=3 * n)).isoformat(),
             "status": ("open", "in_progress", "done", "verified", "dropped")[n % 5],
             "evidence": "" if n % 2 else "响应中位数降至 12 分", "opened_week": f"2026-W{45 + n % 4}",
             "closed_week": None, "overdue": n < 3 and n % 5 < 2}
            for n in range(10)
        ],
        "daily": {
            "response_median_min": [{"date": d.isoformat(), "value": round(v, 2)} for d, v in zip(days, response)],
            "response_sla_compliance": [{"date": d.isoformat(), "value": round(v, 4)} for d, v in zip(days, sla)],
        },
        "markers": [{"date": "2026-11-23", "action_id": 11, "kpi": "response_median_min"},
                    {"date": "2026-11-25", "action_id": 12, "kpi": "response_sla_compliance"}],
    }
