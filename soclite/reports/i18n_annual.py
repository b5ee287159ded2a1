"""The annual report's (Form 08) and the trend section's words, merged into :data:`soclite.reports.i18n.CATALOG`.

Kept apart so the periodic report's catalog stays readable; the same rule holds: Vietnamese beside English.
"""

from __future__ import annotations

ANNUAL_CATALOG: dict[str, dict[str, str]] = {
    "annual_subtitle": {
        "vi": "Công tác bảo đảm an toàn hệ thống thông tin theo cấp độ {period}",
        "en": "Security of information systems by level, {period}",
    },
    "annual_form": {"vi": "Mẫu số 08", "en": "Form 08"},
    "s_systems": {"vi": "I. Hệ thống thông tin và cấp độ", "en": "I. Information systems and their levels"},
    "s_year_alerts": {"vi": "II. Giám sát, cảnh báo trong năm", "en": "II. Monitoring and alerts in the year"},
    "s_year_incidents": {"vi": "III. Sự cố trong năm", "en": "III. Incidents in the year"},
    "no_systems": {
        "vi": "Chưa có hệ thống thông tin nào trong danh mục.",
        "en": "No information system in the inventory.",
    },
    "col.no": {"vi": "STT", "en": "No."},
    "col.name": {"vi": "Tên hệ thống", "en": "System"},
    "col.owner": {"vi": "Chủ quản", "en": "Owner"},
    "col.operator": {"vi": "Đơn vị vận hành", "en": "Operator"},
    "col.level": {"vi": "Cấp độ đề xuất", "en": "Proposed level"},
    "col.approval_status": {"vi": "Tình trạng phê duyệt", "en": "Approval status"},
    "col.approval_decision": {"vi": "Quyết định phê duyệt", "en": "Approval decision"},
    "col.security_regulation": {"vi": "Quy chế bảo đảm an toàn", "en": "Security regulation"},
    "col.expected_approval_date": {"vi": "Dự kiến phê duyệt", "en": "Expected approval"},
    "col.deployment_state": {"vi": "Tình trạng triển khai", "en": "Deployment state"},
    "col.expected_completion": {"vi": "Dự kiến hoàn thành", "en": "Expected completion"},
    "col.review_done": {"vi": "Đã kiểm tra, đánh giá", "en": "Review done"},
    "approval_status.not_submitted": {"vi": "Chưa trình", "en": "Not submitted"},
    "approval_status.submitted": {"vi": "Đã trình", "en": "Submitted"},
    "approval_status.approved": {"vi": "Đã phê duyệt", "en": "Approved"},
    "approval_status.rejected": {"vi": "Không được phê duyệt", "en": "Rejected"},
    "deployment_state.planned": {"vi": "Kế hoạch", "en": "Planned"},
    "deployment_state.deploying": {"vi": "Đang triển khai", "en": "Deploying"},
    "deployment_state.operating": {"vi": "Đang vận hành", "en": "Operating"},
    "deployment_state.retired": {"vi": "Đã dừng", "en": "Retired"},
    "yes": {"vi": "Có", "en": "Yes"},
    "no": {"vi": "Chưa", "en": "No"},
    "systems_total": {"vi": "Số hệ thống thông tin", "en": "Information systems"},
    "systems_approved": {"vi": "Đã phê duyệt cấp độ", "en": "Level approved"},
    "systems_level": {"vi": "Cấp độ {level}", "en": "Level {level}"},
    "incidents_total": {"vi": "Số sự cố", "en": "Incidents"},
    "incident_sev.serious": {"vi": "Sự cố nghiêm trọng", "en": "Serious"},
    "incident_sev.high": {"vi": "Sự cố mức cao", "en": "High"},
    "incident_sev.medium": {"vi": "Sự cố mức trung bình", "en": "Medium"},
    "incident_sev.low": {"vi": "Sự cố mức thấp", "en": "Low"},
    "incidents_national_security": {
        "vi": "Liên quan an ninh quốc gia", "en": "Touching national security",
    },
    "incidents_personal_data": {"vi": "Có vi phạm dữ liệu cá nhân", "en": "With a personal-data breach"},
    "initial_notice_on_time": {"vi": "Thông báo ban đầu đúng hạn", "en": "Initial notice on time"},
    "report_72h_on_time": {"vi": "Báo cáo 72 giờ đúng hạn", "en": "72-hour report on time"},
    "final_reports": {"vi": "Đã có báo cáo kết thúc", "en": "Final report made"},
    "annual_summary": {
        "vi": "Trong {period} ({range}), {systems} hệ thống thông tin được giám sát; ghi nhận {total} cảnh báo "
              "(trong đó {high} cảnh báo mức độ cao) và {incidents} sự cố.",
        "en": "In {period} ({range}), {systems} information systems were monitored; {total} alerts were recorded "
              "({high} of high severity) and {incidents} incidents.",
    },
    # statistical trend detection (issue 17): named for what it is, not "AI"
    "s_trends": {"vi": "Phát hiện xu hướng bằng thống kê", "en": "Statistical trend detection"},
    "trends_none": {
        "vi": "Không có chỉ số nào tăng vượt đường cơ sở theo mùa trong kỳ.",
        "en": "No volume rose beyond its seasonal baseline in the period.",
    },
    "trends_note": {
        "vi": "Đường cơ sở: trung vị cùng giờ trong tuần của các tuần trước; cảnh báo khi vượt trung vị "
              "cộng {k} lần độ lệch tuyệt đối trung vị (MAD).",
        "en": "Baseline: the median of the same hour of the week in previous weeks; flagged above the median "
              "plus {k} times the median absolute deviation (MAD).",
    },
    "trend_metric": {"vi": "Chỉ số", "en": "Volume"},
    "trend_all": {"vi": "Tổng số cảnh báo", "en": "All alerts"},
    "trends_flags": {"vi": "Số giờ tăng vượt đường cơ sở", "en": "Hours above the baseline"},
    "trends_more": {"vi": "Hiển thị {shown}/{total} trường hợp lớn nhất.", "en": "The {shown} largest of {total}."},
    "trend_hour": {"vi": "Giờ", "en": "Hour"},
    "trend_observed": {"vi": "Thực tế", "en": "Observed"},
    "trend_baseline": {"vi": "Cơ sở", "en": "Baseline"},
    "trend_threshold": {"vi": "Ngưỡng", "en": "Threshold"},
}

__all__ = ["ANNUAL_CATALOG"]
