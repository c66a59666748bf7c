"""Both languages are complete: every word has a Chinese and an English form, and the
English form is English."""
from data.words import TEXT, format_minutes, format_percent, t


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


def test_every_word_has_both_forms():
    for key, (zh, en) in TEXT.items():
        assert zh.strip() and en.strip(), key
        assert not has_cjk(en), f"{key}: English form {en!r} holds Chinese"


def test_durations_read_the_same_in_both_languages():
    assert format_minutes(12.4, "zh") == "12 分" and format_minutes(12.4, "en") == "12 min"
    assert format_minutes(150, "zh") == "2.5 时" and format_minutes(150, "en") == "2.5 h"
    assert format_minutes(30 * 60, "en") == "30 h"
    assert format_minutes(3 * 1440, "zh") == "3 天"
    assert format_minutes(None, "en") == "—"
    assert format_percent(0.876, "en") == "88%"
    assert t("tile_open", "zh") == "未关闭问题" and t("tile_open", "en") == "Open issues"


def test_the_kpis_report_names_every_figure_in_both_languages():
    from data import kpis
    from data.words import both

    for key in kpis.ISSUE_KPI_KEYS:
        label = both(f"kpi_{key}")
        assert has_cjk(label) and label.split(" ")[0].isascii(), key
