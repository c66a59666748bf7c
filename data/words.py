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
    "vs_yesterday": ("较昨日同时段", "vs same time yesterday"),
    "no_value": ("—", "—"),
    "minutes_short": ("分", "min"),
    "hours_short": ("时", "h"),
    "days_short": ("天", "d"),
    # board
    "board_title": ("未关闭问题 · 按紧急程度", "Open issues · by urgency"),
    "col_severity": ("级别", "Sev."),
    "col_type": ("类型", "Type"),
    "col_title": ("问题", "Issue"),
    "col_location": ("位置", "Location"),
    "col_age": ("已等待", "Waiting"),
    "col_countdown": ("剩余时限", "Time left"),
    "to_ack": ("待响应", "ack"),
    "to_resolve": ("待解决", "resolve"),
    "overdue_by": ("超时", "over"),
    "page_of": ("第 {page}/{pages} 页", "page {page} of {pages}"),
    "all_clear": ("全部正常 · 没有未关闭的问题", "All clear · no open issues"),
    "no_data": ("暂无数据", "No data yet"),
    # scoreboard
    "scoreboard_title": ("部门记分牌 · 近7天", "Scoreboard · 7 days"),
    "col_open": ("未关闭", "Open"),
    "col_median_response": ("响应中位数", "Median"),
    "col_sla": ("达成率", "SLA"),
    "col_ping_pong": ("来回转派", "Ping-pong"),
    "collaboration_star": ("协同之星", "Collaboration star"),
    # material
    "material_title": ("物料预警", "Material alerts"),
    "stagnant": ("物料滞留", "Stagnant"),
    "shortage": ("缺料", "Shortage"),
    "no_material_alerts": ("物料流转正常", "Material flowing normally"),
    "no_shortages": ("没有未解决的缺料", "No open shortages"),
    "stages_title": ("各阶段在库批次 · 滞留标黄", "Lots on hand by stage · stagnant in amber"),
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
    # the wall's shell: freshness, failed panels, data errors, kiosk parameters, scope, 404
    "server_error": ("服务器出错 · 已记录", "Server error · logged"),
    "panel_failed": ("此面板计算失败 · 已记录", "This panel could not be computed · logged"),
    "data_errors": ("⚠ {count} 条数据异常", "⚠ {count} rows with data errors"),
    "data_errors_one": ("⚠ 1 条数据异常", "⚠ 1 row with a data error"),
    "data_errors_title": ("数据异常（未计入看板），前几条：", "Rows left out of the wall, first ones:"),
    "param_every_invalid": ("参数 every={value} 无效（允许 {low}–{high} 秒的整数），已使用 {used} 秒",
                            "every={value} is not valid (whole seconds, {low}–{high}); using {used} s"),
    "param_rotate_unknown": ("参数 rotate 中的未知页面 {value} 已忽略（可用：{known}）",
                             "rotate: unknown page {value} ignored (pages: {known})"),
    "param_kiosk_invalid": ("参数 kiosk={value} 无效，已忽略（可用 1 或 0）",
                            "kiosk={value} is not valid; ignored (use 1 or 0)"),
    "param_lang_unsupported": ("不支持语言 {value}，已使用中文",
                               "Language {value} is not supported; showing Chinese"),
    "not_per_department": ("本页不分部门", "this page is not per department"),
    "unknown_department": ("未知部门 “{value}”", "Unknown department “{value}”"),
    "unknown_line": ("未知产线 “{value}”", "Unknown line “{value}”"),
    "did_you_mean": ("是否指 “{value}”？", "Did you mean “{value}”?"),
    "known_codes": ("可用：{codes}", "Known: {codes}"),
    "check_address": ("请检查看板地址中的 {param}= 参数 · 未计算任何数据",
                      "Check {param}= in the screen's address · nothing was computed"),
    "empty_database": ("数据库中还没有数据", "The database holds no data yet"),
    "empty_database_demo": ("填入演示工厂：", "Fill it with the demo plant:"),
    "empty_database_import": ("导入本厂数据（格式见 docs/import.md）：",
                              "Import your plant's data (format: docs/import.md):"),
    "not_found_title": ("页面不存在", "Page not found"),
    "not_found_text": ("这个地址没有看板页面。请打开：", "There is no wall page at this address. Open one of these:"),
    # the wall's panels: board, scoreboard and star, lists, durations, figures
    "col_id": ("编号", "No."),
    "col_contact": ("联系", "Contact"),
    "call": ("联系", "call"),
    "col_overdue": ("超时", "Overdue"),
    "ping_pong_mark": ("⇄ 来回转派", "⇄ ping-pong"),
    "ping_pong_title": ("来回转派：曾被转回已转出的部门", "Ping-pong: passed back to a department it had left"),
    "more_rows": ("还有 {n} 项", "+{n} more"),
    "star_line": ("★ 协同之星：{name} · 响应中位数 {median} · 达成率 {sla} · {raised} 单",
                  "★ Collaboration star: {name} · median response {median} · SLA {sla} · {raised} issues"),
    "star_tied": ("同速：{names}", "same median: {names}"),
    "no_star": ("★ 协同之星：暂无部门符合条件", "★ Collaboration star: no department qualifies"),
    "no_stagnant": ("没有滞留批次", "No stagnant lots"),
    "stage_lots": ("{lots} 批", "{lots} lots"),
    "stage_lots_stagnant": ("{lots} 批 · 滞留 {stagnant}", "{lots} lots · {stagnant} stagnant"),
    "turnover_unit": ("次/周", "per week"),
    "seconds_short": ("秒", "s"),
    "duration_dh": ("{d}天{h}时", "{d} d {h} h"),
    "duration_hm": ("{h}时{m}分", "{h} h {m} min"),
    "duration_ms": ("{m}分{s}秒", "{m} min {s} s"),
    "duration_m": ("{m}分", "{m} min"),
    "list_separator": ("、", ", "),
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
    # the source check (data/ingest/source_check.py): headings, then one reason per problem
    "source_title": ("数据源检查", "Source check"),
    "source_table_ok": ("无问题", "ok"),
    "source_rows": ("行数", "rows"),
    "source_clean": ("未发现问题", "no problems found"),
    "source_found": ("发现问题", "problems found"),
    "source_missing_table": ("表不存在", "table missing"),
    "source_unreadable": ("读取出错：{error}", "reading it fails: {error}"),
    "source_missing_column": ("列不存在", "column missing"),
    "source_missing_stamp": ("列不存在：看板靠它跟踪变化", "column missing: the wall follows changes by it"),
    "source_wrong_type_time": ("类型为 {found}，应为 timestamp without time zone（UTC）",
                               "type {found}, should be timestamp without time zone, in UTC"),
    "source_wrong_type_number": ("类型为 {found}，应为数值类型", "type {found}, should be a number type"),
    "source_wrong_type_integer": ("类型为 {found}，应为整数类型", "type {found}, should be an integer type"),
    "source_wrong_type_text": ("类型为 {found}，应为文本类型", "type {found}, should be a text type"),
    "source_empty": ("必填，但为空", "required but empty"),
    "source_no_stamp": ("没有写入时间：看板要到下次全量读取才看到此行",
                        "no write time: the wall sees this row only at its next full read"),
    "source_not_a_time": ("不是写成 YYYY-MM-DD HH:MM:SS 的 UTC 时间",
                          "not a UTC time written YYYY-MM-DD HH:MM:SS"),
    "source_not_a_number": ("不是数字", "not a number"),
    "source_not_an_integer": ("不是整数", "not a whole number"),
    "source_not_text": ("不是文本", "not text"),
    "source_before_plausible": ("早于 PLAUSIBLE_FROM（{bound}）", "before PLAUSIBLE_FROM ({bound})"),
    "source_after_plausible": ("不早于 PLAUSIBLE_UNTIL（{bound}）", "not before PLAUSIBLE_UNTIL ({bound})"),
    "source_not_positive": ("不大于 0", "not greater than 0"),
    "source_negative": ("为负数", "negative"),
    "source_limit_too_long": ("超过 MAX_LIMIT_MINUTES（{bound}）", "above MAX_LIMIT_MINUTES ({bound})"),
    "source_too_large": ("超过 {bound}，不是真实数量", "above {bound}, not a real quantity"),
    "source_integer_range": ("超出 ±{bound}：FloorLink 以 32 位整数读取它",
                             "outside ±{bound}: FloorLink reads it as a 32-bit integer"),
    "source_not_one_of": ("不是以下之一：{choices}", "not one of {choices}"),
    "source_unknown_code": ("{table} 中没有此代码", "no such code in {table}"),
    "source_repeated_key": ("键重复（值为出现次数）", "key repeated (the value: how often)"),
    "source_before_raised": ("早于 raised_at", "before raised_at"),
    "source_before_issue_raised": ("早于所属问题的 raised_at", "before its issue's raised_at"),
    "source_status_without_time": ("状态为 {status}，却没有此时间", "status {status} without this time"),
    "source_resolve_before_ack": ("小于 ack_minutes", "less than ack_minutes"),
    "source_same_place": ("与 from_location_code 相同", "the same as from_location_code"),
    "source_shift_end_not_after_start": ("不晚于 shift_start", "not after shift_start"),
    "source_schema_revision": ("不是本程序的架构版本 {head}：serve 会拒绝此数据库",
                               "not this code's schema revision {head}: serve refuses the database"),
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


def _minutes_unit(minutes: float) -> tuple[str, int, int]:
    """The unit a duration is written in: (word, minutes per unit, decimals)."""
    if minutes < 90:
        return "minutes_short", 1, 0
    if minutes < 600:
        return "hours_short", 60, 1
    if minutes < 48 * 60:
        return "hours_short", 60, 0
    return "days_short", 1440, 0


def format_minutes(minutes: float | None, lang: str, unit_of: float | None = None,
                   more_decimals: int = 0) -> str:
    """Durations as a plant reads them, in at most four digits: 12 分, 2.5 时, 30 时, 3 天.
    With `unit_of`, in the unit of that other duration, so a pair reads in one unit
    (a dwell against its limit: 44 时 / 12 时, never 2 天 / 24 时)."""
    if minutes is None:
        return t("no_value", lang)
    word, size, decimals = _minutes_unit(minutes if unit_of is None else unit_of)
    number = f"{minutes / size:,.{decimals + more_decimals}f}".rstrip("0").removesuffix(".") \
        if decimals + more_decimals else f"{minutes / size:,.0f}"
    return f"{number} {t(word, lang)}"


def format_duration(minutes: float | None, lang: str) -> str:
    """A waiting time to the minute in the board's format (1天8时, 2时10分, 9分), which
    cannot be read as a time of day; assets/wall.js writes the ticking ones the same way,
    from the same words, with seconds below an hour."""
    if minutes is None:
        return t("no_value", lang)
    whole = max(0, int(minutes))
    days, hours, mins = whole // 1440, whole % 1440 // 60, whole % 60
    if days:
        return t("duration_dh", lang).format(d=f"{days:,}", h=hours)
    if hours:
        return t("duration_hm", lang).format(h=hours, m=mins)
    return t("duration_m", lang).format(m=mins)


def format_count(value: int | float) -> str:
    """A count or quantity with thousands separators (1,234; 26,119.5), as both languages
    write figures on the wall."""
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.3f}".rstrip("0")
    return f"{int(value):,}"


def format_percent(ratio: float | None, lang: str) -> str:
    if ratio is None:
        return t("no_value", lang)
    return f"{ratio * 100:.0f}%"
