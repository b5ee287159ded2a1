"""Settings of the reports, the annual report, trends and the compliance schedule (``reports:``,
``compliance:``); part of :mod:`soclite.config`, which re-exports every name here."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, field_validator

ReportFormat = Literal["pdf", "html", "csv", "docx"]


def _all_formats() -> list[ReportFormat]:
    return ["pdf", "html", "csv"]


class ReportSchedule(BaseModel):
    name: str
    #: daily | weekly | monthly | quarterly | half_yearly
    every: Literal["daily", "weekly", "monthly", "quarterly", "half_yearly"]
    day: int = Field(1, ge=1, le=28)
    hour: int = Field(7, ge=0, le=23)
    lang: Literal["vi", "en"] = "vi"
    formats: list[ReportFormat] = Field(default_factory=_all_formats)
    recipients: list[str] = Field(default_factory=list)
    unit: str | None = None
    #: optional crontab overriding day/hour for WHEN it runs ("m h dom mon dow", or 6 fields with seconds
    #: first); ``every`` still decides WHICH period it reports on.
    cron: str | None = None
    #: also send the report upward through the national connector (the outbox's national lane)
    national: bool = False


#: Bodies a report is addressed to, by preset name (``{province}`` is filled in). Oversight of network
#: information security moved from the Ministry of Information and Communications to the Ministry of Public
#: Security's A05 on 1 March 2025, and the former was merged into the Ministry of Science and Technology
#: (docs/LEGAL.md); ``mic`` stays the periodic report's default because it is whom the province was first
#: asked to report to, the current bodies are one setting away.
ADDRESSEE_PRESETS: dict[str, str] = {
    "mic": "Bộ Thông tin và Truyền thông",
    "mps_a05": "Cục An ninh mạng và phòng, chống tội phạm sử dụng công nghệ cao (A05), Bộ Công an",
    "most": "Bộ Khoa học và Công nghệ",
    "dost": "Sở Khoa học và Công nghệ {province}",
    "province_ppc": "Ủy ban nhân dân {province}",
}
AddresseePreset = Literal["mic", "mps_a05", "most", "dost", "province_ppc"]


class SignerSettings(BaseModel):
    """The signer block of Decree 30/2020/NĐ-CP: authority (``KT. GIÁM ĐỐC``), title, name."""

    #: signing on behalf: "KT." (ký thay), "TL." (thừa lệnh), "TM." (thay mặt) followed by the head's title; empty
    #: when the head signs
    authority: str = ""
    title: str = "Giám đốc"
    name: str = ""


class ReportSettings(BaseModel):
    #: the body issuing the report and the agency it belongs to (Decree 30/2020: both in capitals, the parent
    #: above); ``{province}`` is filled in
    issuing_unit: str = "Trung tâm Giám sát an toàn thông tin mạng"
    issuing_parent: str = "Sở Khoa học và Công nghệ {province}"
    #: "Kính gửi": a preset name, unless ``recipient`` spells it out
    recipient_preset: AddresseePreset = "mic"
    recipient: str | None = None
    #: "Nơi nhận" beyond "Như trên" and the archive: each entry a preset name or a body's name
    copies_to: list[str] = Field(default_factory=list)
    #: the archive line closing "Nơi nhận" (Decree 30/2020: "Lưu: VT, <drafting unit>")
    archive_copy: str = "Lưu: VT"
    #: place in the date line; default: the province
    place: str | None = None
    signer: SignerSettings = Field(default_factory=SignerSettings)
    document_prefix: str = "BC-ATTT"
    schedules: list[ReportSchedule] = Field(default_factory=list)

    def addressee(self, name: str, province: str) -> str:
        """A preset name resolved (with the province filled in), any other text as written."""
        return ADDRESSEE_PRESETS.get(name, name).replace("{province}", province)

    def recipient_name(self, province: str) -> str:
        return self.addressee(self.recipient or self.recipient_preset, province)


#: Minimum months of logs kept for an information system of security level 2..5 (TCVN 14423, per issue 17:
#: see docs/LEGAL.md — not verified against the standard's text). Level 1 sets no minimum here.
LEGAL_RETENTION_MONTHS: dict[int, int] = {2: 1, 3: 3, 4: 6, 5: 12}


class TrendSettings(BaseModel):
    """Statistical trend detection: hourly volumes against the median and MAD of the same hour of the week."""

    enabled: bool = True
    #: previous weeks the baseline is taken from, and the fewest it needs before it judges at all
    weeks: int = Field(4, ge=2, le=26)
    min_weeks: int = Field(2, ge=2, le=26)
    #: flagged above median + k x 1.4826 MAD (a robust z-score of k)
    k: float = Field(4.0, gt=0)
    #: and at least this many more than the median, and this many in the hour (no alarm over 3 alerts instead of 1)
    min_excess: int = Field(5, ge=0)
    min_count: int = Field(10, ge=1)
    #: and a Poisson count at the usual rate's upper bound reaches it with less than this probability
    p_value: float = Field(1e-5, gt=0, lt=1)
    #: minutes between passes of the scheduler; who is told (empty: ``compliance.incident_notify``)
    every_minutes: int = Field(60, ge=5)
    notify: list[str] = Field(default_factory=list)


def _annual_formats() -> list[ReportFormat]:
    return ["pdf", "docx", "csv", "html"]


class AnnualReportSettings(BaseModel):
    """The annual report (Form 08, year 15/12-14/12): a draft on ``draft_day`` of December, reminders before the
    units' deadline (``unit_deadline_day``, 20/12) and the owner's to the Ministry of Public Security (25/12)."""

    enabled: bool = True
    draft_day: int = Field(15, ge=15, le=19)
    unit_deadline_day: int = Field(20, ge=16, le=31)
    owner_deadline_day: int = Field(25, ge=16, le=31)
    #: reminders go out this many days before each deadline (and at the next start, if one was missed)
    remind_days_before: list[int] = Field(default_factory=lambda: [3, 1])
    hour: int = Field(8, ge=0, le=23)
    lang: Literal["vi", "en"] = "vi"
    formats: list[ReportFormat] = Field(default_factory=_annual_formats)
    #: who is reminded (e-mail through the playbook outbox); empty: ``compliance.incident_notify``
    notify: list[str] = Field(default_factory=list)


class ReviewSettings(BaseModel):
    """Log review and alert-threshold tuning per information system, by security level (issue 17; docs/LEGAL.md).

    The issue reads TCVN 14423 as "every 6 months at level 3 and more often above"; how much more often is our
    choice, hence configuration: a level missing from ``interval_months_by_level`` has no such obligation."""

    enabled: bool = True
    interval_months_by_level: dict[int, int] = Field(default_factory=lambda: {3: 6, 4: 3, 5: 1})
    #: reminders go out this many days before the due date (and once when it has passed)
    remind_days_before: list[int] = Field(default_factory=lambda: [14, 3])
    #: who is reminded (e-mail through the playbook outbox); empty: ``compliance.incident_notify``
    notify: list[str] = Field(default_factory=list)

    @field_validator("interval_months_by_level")
    @classmethod
    def _at_most_six_months_from_level_3(cls, value: dict[int, int]) -> dict[int, int]:
        for level, months in value.items():
            if level not in range(1, 6):
                raise ValueError(f"security level {level} does not exist (levels are 1 to 5)")
            if months < 1:
                raise ValueError(f"level {level}: the interval is at least 1 month, not {months}")
            if level >= 3 and months > 6:
                raise ValueError(
                    f"level {level} must be reviewed at least every 6 months, not every {months}"
                )
        return value

    @field_validator("remind_days_before")
    @classmethod
    def _positive(cls, value: list[int]) -> list[int]:
        if any(d < 0 for d in value):
            raise ValueError("reminder days must not be negative")
        return value


class ComplianceSettings(BaseModel):
    """Obligations that follow from the information systems' security levels."""

    #: months of events and alerts kept per security level; only upward of the legal minimum
    retention_months_by_level: dict[int, int] = Field(default_factory=lambda: dict(LEGAL_RETENTION_MONTHS))
    #: who is e-mailed (through the playbook outbox) when an incident's deadline is near or passed
    incident_notify: list[str] = Field(default_factory=list)
    #: how long before a deadline the escalation e-mail goes out
    incident_warn_minutes: int = Field(240, ge=1)
    annual_report: AnnualReportSettings = Field(default_factory=AnnualReportSettings)
    trends: TrendSettings = Field(default_factory=TrendSettings)
    reviews: ReviewSettings = Field(default_factory=ReviewSettings)

    @field_validator("retention_months_by_level")
    @classmethod
    def _not_below_the_minimum(cls, value: dict[int, int]) -> dict[int, int]:
        for level, months in value.items():
            if level not in range(1, 6):
                raise ValueError(f"security level {level} does not exist (levels are 1 to 5)")
            minimum = LEGAL_RETENTION_MONTHS.get(level, 0)
            if months < minimum:
                raise ValueError(
                    f"level {level} must keep logs at least {minimum} months (TCVN 14423), not {months}"
                )
        return {**LEGAL_RETENTION_MONTHS, **value}
