"""Pydantic models shared by the client, the widgets and the service; no I/O here."""

from .audit import AuditEvent
from .connection import ConnectionTestResult, LastTest, ServerType, Stage
from .problems import FieldError, Problem
from .servers import (
    FIELD_LABELS,
    SECRET_FIELDS,
    SETTINGS_BY_TYPE,
    TYPE_LABELS,
    CertificateInfo,
    EmailServer,
    EmailServerPatch,
    EmailServerSpec,
    GraphServerSpec,
    GraphSettings,
    GraphSettingsView,
    SmtpServerSpec,
    SmtpSettings,
    SmtpSettingsView,
    field_errors,
)
from .usage import (
    CustomAction,
    Delivery,
    Page,
    SchedulerJob,
    SendTestResult,
    Usage,
    UsageCounts,
)
from .workspaces import Me, RoleGrant, Workspace

__all__ = [
    "FIELD_LABELS",
    "SECRET_FIELDS",
    "SETTINGS_BY_TYPE",
    "TYPE_LABELS",
    "AuditEvent",
    "CertificateInfo",
    "ConnectionTestResult",
    "CustomAction",
    "Delivery",
    "EmailServer",
    "EmailServerPatch",
    "EmailServerSpec",
    "FieldError",
    "GraphServerSpec",
    "GraphSettings",
    "GraphSettingsView",
    "LastTest",
    "Me",
    "Page",
    "Problem",
    "RoleGrant",
    "SchedulerJob",
    "SendTestResult",
    "ServerType",
    "SmtpServerSpec",
    "SmtpSettings",
    "SmtpSettingsView",
    "Stage",
    "Usage",
    "UsageCounts",
    "Workspace",
    "field_errors",
]
