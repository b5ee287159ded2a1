"""The report's words in Vietnamese (default) and English, and locale-aware numbers.

A small catalog keyed by message id rather than gettext files: the report has
some sixty strings and two languages, and a dict keeps the pair side by side
where a reviewer can check the Vietnamese against the English.
Numbers go through Babel so Vietnamese reads ``69.600`` and English ``69,600``.
"""

from __future__ import annotations

from babel.numbers import format_decimal

from soclite.errors import ReportError
from soclite.reports.i18n_annual import ANNUAL_CATALOG

LANGUAGES = ("vi", "en")

CATALOG: dict[str, dict[str, str]] = {
    "title": {"vi": "BÁO CÁO", "en": "REPORT"},
    "subtitle": {
        "vi": "Tình hình giám sát an toàn thông tin mạng {period}",
        "en": "Information security monitoring, {period}",
    },
    "doc_number": {"vi": "Số", "en": "No."},
    "issuing_unit": {"vi": "Đơn vị báo cáo", "en": "Issued by"},
    "recipient": {"vi": "Kính gửi", "en": "To"},
    "period": {"vi": "Kỳ báo cáo", "en": "Period"},
    "scope_unit": {"vi": "Phạm vi", "en": "Scope"},
    "whole_province": {"vi": "Toàn tỉnh", "en": "Whole province"},
    "generated_at": {"vi": "Thời điểm lập", "en": "Generated at"},
    "country": {"vi": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "en": "SOCIALIST REPUBLIC OF VIET NAM"},
    "motto": {"vi": "Độc lập - Tự do - Hạnh phúc", "en": "Independence - Freedom - Happiness"},
    "s_summary": {"vi": "I. Tóm tắt", "en": "I. Summary"},
    "s_scope": {"vi": "II. Phạm vi giám sát", "en": "II. Monitoring scope"},
    "s_alerts": {"vi": "III. Cảnh báo", "en": "III. Alerts"},
    "s_handling": {"vi": "IV. Xử lý cảnh báo", "en": "IV. Alert handling"},
    "s_incidents": {"vi": "V. Sự cố, mã độc và cô lập máy", "en": "V. Incidents, malware and isolations"},
    "s_intel": {"vi": "VI. Chia sẻ thông tin với hệ thống quốc gia", "en": "VI. Sharing with the national system"},
    "s_compare": {"vi": "VII. So sánh với kỳ trước", "en": "VII. Comparison with the previous period"},
    "s_annex": {"vi": "Phụ lục", "en": "Annex"},
    # "recorded", not "recorded and handled": the open ones are counted in the same sentence
    "summary": {
        "vi": "Trong {period}, đã ghi nhận {total} cảnh báo mất an toàn thông tin, trong đó có "
        "{high} cảnh báo mức độ cao, {medlow} cảnh báo mức độ trung bình và thấp.",
        "en": "In {period}, {total} information security alerts were recorded, of which "
        "{high} were high severity and {medlow} medium and low severity.",
    },
    "summary_handled": {
        "vi": "Đã xử lý xong {closed} cảnh báo ({closed_pct}), trong đó {on_time} cảnh báo đúng hạn; "
        "còn {open} cảnh báo đang theo dõi, xử lý.",
        "en": "{closed} alerts were closed ({closed_pct}), {on_time} of them on time; "
        "{open} are still being handled.",
    },
    "empty": {"vi": "Không ghi nhận cảnh báo nào trong kỳ.", "en": "No alerts were recorded in the period."},
    "servers": {"vi": "Máy chủ được giám sát", "en": "Servers monitored"},
    "workstations": {"vi": "Máy trạm được giám sát", "en": "Workstations monitored"},
    "agents": {"vi": "Máy cài agent", "en": "Hosts with an agent"},
    "agents_active": {"vi": "Tỷ lệ agent hoạt động trong kỳ", "en": "Share of agents active in the period"},
    "agents_active_count": {"vi": "Số máy có agent hoạt động trong kỳ", "en": "Agents active in the period"},
    "national_status": {
        "vi": "Kết nối với hệ thống giám sát quốc gia",
        "en": "Connection to the national monitoring system",
    },
    "national_enabled": {"vi": "Đã cấu hình, đang hoạt động", "en": "Configured and enabled"},
    "national_disabled": {"vi": "Chưa kết nối", "en": "Not connected"},
    "no_data": {"vi": "không có dữ liệu", "en": "no data"},
    "total": {"vi": "Tổng số", "en": "Total"},
    "high": {"vi": "Cao", "en": "High"},
    "medium": {"vi": "Trung bình", "en": "Medium"},
    "low": {"vi": "Thấp", "en": "Low"},
    "medlow": {"vi": "Trung bình và thấp", "en": "Medium and low"},
    "severity": {"vi": "Mức độ", "en": "Severity"},
    "count": {"vi": "Số lượng", "en": "Count"},
    "share": {"vi": "Tỷ lệ", "en": "Share"},
    "by_severity": {"vi": "Theo mức độ", "en": "By severity"},
    "by_tactic": {"vi": "Theo nhóm kỹ thuật tấn công (MITRE ATT&CK)", "en": "By ATT&CK tactic"},
    "tactic": {"vi": "Chiến thuật", "en": "Tactic"},
    "untagged": {"vi": "Chưa phân loại", "en": "Not classified"},
    "by_unit": {"vi": "Theo đơn vị", "en": "By unit"},
    "unit": {"vi": "Đơn vị", "en": "Unit"},
    "no_unit": {"vi": "(chưa gán đơn vị)", "en": "(no unit)"},
    "top_rules": {"vi": "Các luật phát hiện nhiều cảnh báo nhất", "en": "Top detection rules"},
    "rule": {"vi": "Luật", "en": "Rule"},
    "rules_tuning": {"vi": "Các luật cần tinh chỉnh", "en": "Rules needing tuning"},
    "rules_tuning_none": {"vi": "Không có luật nào cần tinh chỉnh.", "en": "No rule needs tuning."},
    "fp_rate": {"vi": "Tỷ lệ cảnh báo sai", "en": "False positive rate"},
    "reason": {"vi": "Lý do", "en": "Reason"},
    "state_noisy": {"vi": "Gây nhiễu", "en": "Noisy"},
    "state_broken": {"vi": "Hỏng", "en": "Broken"},
    "state_never_fired": {"vi": "Chưa từng kích hoạt", "en": "Never fired"},
    "top_hosts": {"vi": "Các máy có nhiều cảnh báo nhất", "en": "Top hosts"},
    "host": {"vi": "Máy", "en": "Host"},
    "status": {"vi": "Trạng thái", "en": "Status"},
    "handled": {"vi": "Đã xử lý", "en": "Handled (resolved)"},
    "false_positive": {"vi": "Cảnh báo sai (dương tính giả)", "en": "False positive"},
    "unhandled": {"vi": "Chưa xử lý xong", "en": "Not yet handled"},
    "st_new": {"vi": "Mới", "en": "New"},
    "st_acknowledged": {"vi": "Đã tiếp nhận", "en": "Acknowledged"},
    "st_in_progress": {"vi": "Đang xử lý", "en": "In progress"},
    "st_resolved": {"vi": "Đã xử lý", "en": "Resolved"},
    "st_false_positive": {"vi": "Cảnh báo sai", "en": "False positive"},
    "on_time": {"vi": "Xử lý đúng hạn", "en": "Handled on time"},
    "late": {"vi": "Quá hạn", "en": "Late"},
    "sla": {"vi": "Thời hạn xử lý (SLA)", "en": "Service level (SLA)"},
    "sla_text": {
        "vi": "cao: {high} phút; trung bình: {medium} phút; thấp: {low} phút",
        "en": "high: {high} min; medium: {medium} min; low: {low} min",
    },
    "mtta": {"vi": "Thời gian tiếp nhận trung bình", "en": "Mean time to acknowledge"},
    "mttr": {"vi": "Thời gian xử lý trung bình", "en": "Mean time to resolve"},
    "minutes": {"vi": "phút", "en": "min"},
    "incidents": {"vi": "Sự cố (cảnh báo mức độ cao)", "en": "Incidents (high-severity alerts)"},
    "incidents_more": {
        "vi": "Hiển thị {shown}/{total}; danh sách đầy đủ trong tệp CSV.",
        "en": "Showing {shown} of {total}; the full list is in the CSV file.",
    },
    "first_seen": {"vi": "Thời điểm phát hiện", "en": "First seen"},
    "repeats": {"vi": "Số lần", "en": "Repeats"},
    "malware": {"vi": "Phát hiện mã độc", "en": "Malware detections"},
    "isolations": {
        "vi": "Số lượt cô lập máy (agent xác nhận đã áp dụng)",
        "en": "Host isolations confirmed by the agent",
    },
    "hosts_isolated": {"vi": "Số máy đã bị cô lập trong kỳ", "en": "Hosts isolated in the period"},
    "isolation_commands": {"vi": "Số lệnh cô lập đã gửi tới agent", "en": "Isolation commands sent to agents"},
    "isolation_requests": {"vi": "Số yêu cầu cô lập (nhật ký thao tác)", "en": "Isolation requests (audit trail)"},
    "mtta_minutes": {"vi": "Thời gian tiếp nhận trung bình (phút)", "en": "Mean time to acknowledge (minutes)"},
    "mttr_minutes": {"vi": "Thời gian xử lý trung bình (phút)", "en": "Mean time to resolve (minutes)"},
    "within_sla_open": {"vi": "Chưa xử lý xong, còn trong hạn", "en": "Open, still within the SLA"},
    "national_enabled_flag": {
        "vi": "Kết nối hệ thống giám sát quốc gia (1 = có)",
        "en": "National system connection configured (1 = yes)",
    },
    "national_state": {"vi": "Trạng thái kết nối hệ thống quốc gia", "en": "National connector state"},
    "summary_sentence": {"vi": "Tóm tắt", "en": "Summary"},
    "status_count": {"vi": "Số cảnh báo ở trạng thái", "en": "Alerts in status"},
    "host_count": {"vi": "Số cảnh báo của máy", "en": "Alerts of host"},
    "place_date": {"vi": "{place}, ngày {day:02d} tháng {month:02d} năm {year}", "en": "{place}, {date}"},
    "copies": {"vi": "Nơi nhận", "en": "Distribution"},
    "as_above": {"vi": "Như trên", "en": "As above"},
    "isolated_now": {"vi": "Máy đang bị cô lập", "en": "Hosts isolated now"},
    "iocs_received": {
        "vi": "Chỉ dấu tấn công (IoC) nhận từ hệ thống quốc gia trong kỳ",
        "en": "IoCs received from the national system in the period",
    },
    "iocs_held": {
        "vi": "Chỉ dấu tấn công (IoC) của hệ thống quốc gia đang áp dụng",
        "en": "National IoCs applied now",
    },
    "iocs_sent": {
        "vi": "Cảnh báo, sự cố đã gửi hệ thống quốc gia trong kỳ",
        "en": "Alerts and incidents sent to the national system in the period",
    },
    "connector_downtime": {"vi": "Thời gian mất kết nối trong kỳ", "en": "Connector downtime in the period"},
    "connector_outages": {"vi": "Số lần mất kết nối", "en": "Connector outages"},
    "previous": {"vi": "Kỳ trước", "en": "Previous period"},
    "current": {"vi": "Kỳ này", "en": "This period"},
    "change": {"vi": "Thay đổi", "en": "Change"},
    "chart_over_time": {"vi": "Cảnh báo theo thời gian và mức độ", "en": "Alerts over time by severity"},
    "chart_by_unit": {"vi": "Cảnh báo theo đơn vị", "en": "Alerts by unit"},
    "annex_rules": {"vi": "Phụ lục 1. Cảnh báo theo luật phát hiện", "en": "Annex 1. Alerts by detection rule"},
    "annex_hosts": {"vi": "Phụ lục 2. Cảnh báo theo máy", "en": "Annex 2. Alerts by host"},
    "signature": {"vi": "NGƯỜI LẬP BÁO CÁO", "en": "PREPARED BY"},
    "signed": {"vi": "(Ký, ghi rõ họ tên, đóng dấu)", "en": "(Signature, full name, seal)"},
    "footer": {
        "vi": "Số liệu được truy vấn trực tiếp từ kho dữ liệu soclite ({store}); tham số truy vấn lưu kèm báo cáo.",
        "en": "Figures queried directly from the soclite store ({store}); the query parameters are archived with the report.",
    },
}

CATALOG.update(ANNUAL_CATALOG)

#: ATT&CK enterprise tactics as Sigma tags them (attack.<tactic>), with their Vietnamese names.
TACTICS: dict[str, dict[str, str]] = {
    "reconnaissance": {"vi": "Trinh sát", "en": "Reconnaissance"},
    "resource_development": {"vi": "Chuẩn bị nguồn lực", "en": "Resource Development"},
    "initial_access": {"vi": "Truy cập ban đầu", "en": "Initial Access"},
    "execution": {"vi": "Thực thi", "en": "Execution"},
    "persistence": {"vi": "Duy trì hiện diện", "en": "Persistence"},
    "privilege_escalation": {"vi": "Leo thang đặc quyền", "en": "Privilege Escalation"},
    "defense_evasion": {"vi": "Né tránh phòng thủ", "en": "Defense Evasion"},
    "credential_access": {"vi": "Đánh cắp thông tin xác thực", "en": "Credential Access"},
    "discovery": {"vi": "Khám phá", "en": "Discovery"},
    "lateral_movement": {"vi": "Di chuyển ngang", "en": "Lateral Movement"},
    "collection": {"vi": "Thu thập", "en": "Collection"},
    "command_and_control": {"vi": "Điều khiển và kiểm soát", "en": "Command and Control"},
    "exfiltration": {"vi": "Đánh cắp dữ liệu", "en": "Exfiltration"},
    "impact": {"vi": "Gây ảnh hưởng", "en": "Impact"},
}


def check_language(lang: str) -> str:
    if lang not in LANGUAGES:
        raise ReportError(f"unknown language {lang!r}; expected one of {', '.join(LANGUAGES)}")
    return lang


def t(key: str, lang: str, **values: object) -> str:
    """The message ``key`` in ``lang`` with ``{names}`` filled in."""
    text = CATALOG[key][lang]
    return text.format(**values) if values else text


def num(value: int | float, lang: str) -> str:
    """A count as the locale writes it: 69.600 (vi), 69,600 (en)."""
    return format_decimal(value, locale="vi" if lang == "vi" else "en")


def pct(part: int, whole: int, lang: str) -> str:
    if whole <= 0:
        return "—"
    return format_decimal(round(100.0 * part / whole, 1), format="#,##0.0", locale=lang) + "%"


def minutes(value: float | None, lang: str) -> str:
    if value is None:
        return t("no_data", lang)
    return format_decimal(round(value, 1), format="#,##0.0", locale=lang) + " " + t("minutes", lang)
