"""Every word on screen, in Chinese (first) and English, from one table.

Labels follow the glossary of the domain (发起 raised, 响应 acknowledged, 超时 overdue ...).
Department and issue-type names come from the database (name_zh / name_en), not from here.
"""
from __future__ import annotations

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

TEXT: dict[str, tuple[str, str]] = {
    "app_title": ("现场协同看板", "Site Operations Wall"),
    "whole_site": ("全厂", "Whole site"),
    "line": ("产线", "Line"),
    "department": ("部门", "Department"),
    "now_showing": ("正在显示", "Now showing"),
    "updated": ("更新于", "Updated"),
    "stale": ("数据已过期", "Data is stale"),
    "stale_detail": ("最后有效数据", "last good data"),
    "db_unreachable": ("数据库无法连接", "Database unreachable"),
    "server_unreachable": ("服务器无法连接", "Server unreachable"),
    "retrying": ("正在自动重试", "retrying automatically"),
    "page_overview": ("总览", "Overview"),
    "page_issues": ("问题看板", "Issue board"),
    "page_material": ("物料看板", "Material"),
    # tiles
    "tile_open": ("未关闭问题", "Open issues"),
    "tile_overdue": ("超时问题", "Overdue"),
    "tile_median_response": ("今日响应时长中位数", "Median response"),
    "tile_response_sla": ("今日响应达成率", "Response SLA today"),
    "tile_resolution_rate": ("今日解决率", "Resolved today"),
    "tile_plan_attainment": ("本班计划达成率", "Plan, this shift"),
    "goal": ("目标", "goal"),
    "vs_yesterday": ("较昨日", "vs yesterday"),
    "no_value": ("—", "—"),
    "minutes_short": ("分", "min"),
    "hours_short": ("时", "h"),
    "days_short": ("天", "d"),
    "minutes_compact": ("分", "m"),
    # board
    "board_title": ("未关闭问题 · 按紧急程度", "Open issues · by urgency"),
    "col_severity": ("级别", "Sev."),
    "col_type": ("类型", "Type"),
    "col_title": ("问题", "Issue"),
    "col_location": ("位置", "Location"),
    "col_owner": ("责任部门", "Owner"),
    "col_age": ("已等待", "Waiting"),
    "col_countdown": ("剩余时限", "Time left"),
    "to_ack": ("待响应", "ack"),
    "to_resolve": ("待解决", "resolve"),
    "overdue_by": ("超时", "over"),
    "page_of": ("页", "page"),
    "all_clear": ("全部正常 · 没有未关闭的问题", "All clear · no open issues"),
    "no_data": ("暂无数据", "No data yet"),
    # scoreboard
    "scoreboard_title": ("部门记分牌 · 近7天", "Scoreboard · 7 days"),
    "col_open": ("未关闭", "Open"),
    "col_median_response": ("响应中位数", "Median"),
    "col_sla": ("达成率", "SLA"),
    "col_ping_pong": ("来回转派", "Ping-pong"),
    "collaboration_star": ("协同之星", "Star"),
    # material
    "material_title": ("物料预警", "Material alerts"),
    "stagnant": ("物料滞留", "Stagnant"),
    "shortage": ("缺料", "Shortage"),
    "no_material_alerts": ("物料流转正常", "Material flowing normally"),
    "no_shortages": ("没有未解决的缺料", "No open shortages"),
    "stages_title": ("各阶段在库批次 · 滞留标红", "Lots on hand by stage · stagnant in red"),
    "stagnant_title": ("滞留批次 · 按滞留时长", "Stagnant lots · longest first"),
    "shortages_title": ("未解决缺料", "Open shortages"),
    "tile_stagnant_lots": ("滞留批次", "Stagnant lots"),
    "tile_shortages": ("缺料问题", "Open shortages"),
    "tile_lots_at_iqc": ("待检批次 (IQC)", "Lots at IQC"),
    "tile_turnover_week": ("近7天物料周转率", "Turnover, last 7 days"),
    "col_lot": ("批次", "Lot"),
    "col_material": ("物料", "Material"),
    "col_qty": ("数量", "Qty"),
    "col_dwell": ("滞留 / 时限", "Dwell / limit"),
    "lots": ("批", "lots"),
    "in_flow": ("正常", "Flowing"),
    "stage_receiving": ("收货", "Receiving"),
    "stage_iqc": ("来料检验", "Incoming inspection"),
    "stage_warehouse": ("仓库", "Warehouse"),
    "stage_line_side": ("线边库", "Line-side"),
    "stage_wip": ("在制品", "WIP"),
    "stage_finished": ("成品", "Finished goods"),
    # trend
    "trend_title": ("近30天每日响应时长中位数（分钟）", "Daily median response, last 30 days (min)"),
    "trend_goal": ("目标 {goal} 分钟", "goal {goal} min"),
    # the kpis report (data/reports/kpi_report.py)
    "kpi_raised": ("发起", "raised"),
    "kpi_response_median_min": ("响应时长中位数（分）", "response median (min)"),
    "kpi_response_p90_min": ("响应时长 P90（分）", "response p90 (min)"),
    "kpi_resolution_median_min": ("解决时长中位数（分）", "resolution median (min)"),
    "kpi_resolution_p90_min": ("解决时长 P90（分）", "resolution p90 (min)"),
    "kpi_response_sla_met": ("响应达标", "response SLA met"),
    "kpi_response_sla_breached": ("响应超时", "response SLA breached"),
    "kpi_response_sla_compliance": ("响应达成率", "response SLA compliance"),
    "kpi_resolution_sla_met": ("解决达标", "resolution SLA met"),
    "kpi_resolution_sla_breached": ("解决超时", "resolution SLA breached"),
    "kpi_resolution_sla_compliance": ("解决达成率", "resolution SLA compliance"),
    "kpi_resolution_rate": ("解决率", "resolution rate"),
    "kpi_open": ("截至时点未关闭", "open at as_of"),
    "kpi_overdue": ("截至时点超时", "overdue at as_of"),
    "kpi_handoffs_mean": ("平均转派次数", "hand-offs per issue"),
    "kpi_ping_pong_issues": ("来回转派问题", "ping-pong issues"),
    "report_title": ("FloorLink 指标，截至", "FloorLink KPIs as of"),
    "report_window": ("统计窗口", "window"),
    "report_overall": ("全厂", "overall"),
    "report_stagnant_lots": ("物料滞留批次", "stagnant lots"),
    "report_turnover": ("物料周转率", "material turnover"),
    "report_plan_attainment": ("计划达成率", "plan attainment"),
    "report_on_hand": ("库存", "on-hand"),
    "report_location": ("库位", "location"),
    "report_material": ("物料", "material"),
    "report_qty": ("数量", "qty"),
    "report_no_stock": ("（无库存）", "(no stock)"),
}


def t(key: str, lang: str) -> str:
    zh, en = TEXT[key]
    return en if lang == "en" else zh


def both(key: str) -> str:
    """English then Chinese, for output read by either (a terminal, a log)."""
    zh, en = TEXT[key]
    return f"{en} {zh}"


def language(value: str | None) -> str:
    return value if value in LANGUAGES else DEFAULT_LANGUAGE


def bilingual_name(row: dict, lang: str, stem: str = "name") -> str:
    """A database row's name in the screen's language, falling back to the other one."""
    first, second = (f"{stem}_en", f"{stem}_zh") if lang == "en" else (f"{stem}_zh", f"{stem}_en")
    return row.get(first) or row.get(second) or ""


def format_minutes(minutes: float | None, lang: str) -> str:
    """Durations as a plant reads them, in at most four digits: 12 分, 2.5 时, 30 时, 3 天."""
    if minutes is None:
        return t("no_value", lang)
    if minutes < 90:
        return f"{minutes:.0f} {t('minutes_short', lang)}"
    if minutes < 600:
        return f"{minutes / 60:.1f} {t('hours_short', lang)}"
    if minutes < 48 * 60:
        return f"{minutes / 60:.0f} {t('hours_short', lang)}"
    return f"{minutes / 1440:.0f} {t('days_short', lang)}"


def format_percent(ratio: float | None, lang: str) -> str:
    if ratio is None:
        return t("no_value", lang)
    return f"{ratio * 100:.0f}%"
