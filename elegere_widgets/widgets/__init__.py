"""The Email Servers widgets for JupyterLab and Voilà: ipywidgets over the client.

``EmailServersPanel`` is the tab; the views it opens take data and callbacks and never call
the client themselves, and ``state`` holds the decisions, testable without widgets.
"""

from __future__ import annotations

from .details import ServerDetailsView
from .dialogs import DeleteDialog
from .forms import GraphForm, ServerForm, SmtpForm
from .panel import EmailServersPanel
from .rollover import CertificateRolloverView, RolloverCalls
from .server_actions import SendTestView, TestNowView
from .table import ServerRow, ServersTable
from .update import UpdateServerView
from .wizard import AddServerWizard

__all__ = [
    "AddServerWizard",
    "CertificateRolloverView",
    "DeleteDialog",
    "EmailServersPanel",
    "GraphForm",
    "RolloverCalls",
    "SendTestView",
    "ServerDetailsView",
    "ServerForm",
    "ServerRow",
    "ServersTable",
    "SmtpForm",
    "TestNowView",
    "UpdateServerView",
]
