"""Certificate rollover, in Update: hold the renewed certificate beside the current one, test it
on its own, then promote it (or drop it), with no failed send in between.

The view shows both certificates' expiry and where the next one stands (not tested, passed,
failed), and takes the next certificate's file, password and alias in rows made from the
settings' own fields. Its test runs like Test Connection (in the background, stage by stage,
cancellable); Promote is offered once that very certificate passed a test, and the service
refuses it otherwise anyway. The view calls only the ``RolloverCalls`` it is given, bound to
one server by its owner (``RolloverCalls.bound`` over the client's email servers); every call
that changes the server hands the new server to ``on_changed`` with what to tell the user.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

import ipywidgets

from ..errors import ElegereError, InvalidSettings
from ..models import CertificateInfo, ConnectionTestResult, EmailServer
from ..models.servers import FIELD_LABELS, NEXT_CERTIFICATE_FIELDS, GraphSettings
from .common import Runner, StatusLine, button, close_tree, css, esc, handles_errors, set_visible
from .connection_test import ConnectionTestView, Run, StageCallback, Wording
from .fields import FieldRow, FieldSpec, uploaded_name
from .formatting import result_summary
from .state import TestStatus, TestTracker

__all__ = ["CertificateRolloverView", "RolloverApi", "RolloverCalls"]


class RolloverApi(Protocol):
    """The client's calls the rollover needs (``client.email_servers`` has them)."""

    def upload_next_certificate(
        self,
        owner: str,
        server_id: str,
        /,
        *,
        certificate: bytes,
        password: str | None = None,
        alias: str | None = None,
        version: int,
    ) -> EmailServer: ...

    def test_next_certificate(
        self, owner: str, server_id: str, /, *, on_stage: StageCallback | None = None
    ) -> ConnectionTestResult: ...

    def promote_next_certificate(
        self, owner: str, server_id: str, /, *, version: int
    ) -> EmailServer: ...

    def drop_next_certificate(
        self, owner: str, server_id: str, /, *, version: int
    ) -> EmailServer: ...


@dataclass(frozen=True)
class RolloverCalls:
    """What the rollover asks of the service, for one server."""

    #: (file, password, alias, version) → the server holding it as its next certificate.
    upload: Callable[[bytes, str | None, str | None, int], EmailServer]
    #: The next certificate's test, each stage to the callback as it ends.
    test: Callable[[StageCallback], ConnectionTestResult]
    promote: Callable[[int], EmailServer]
    drop: Callable[[int], EmailServer]

    @classmethod
    def bound(cls, api: RolloverApi, owner: str, server_id: str) -> RolloverCalls:
        """The calls of ``api`` (a workspace's or the organization's email servers) for one
        server of ``owner``."""
        return cls(
            upload=lambda data, password, alias, version: api.upload_next_certificate(
                owner, server_id, certificate=data, password=password, alias=alias, version=version
            ),
            test=lambda on_stage: api.test_next_certificate(owner, server_id, on_stage=on_stage),
            promote=lambda version: api.promote_next_certificate(owner, server_id, version=version),
            drop=lambda version: api.drop_next_certificate(owner, server_id, version=version),
        )


NEXT_TEST_WORDING = Wording(
    button="Test next certificate",
    button_class="elegere-test-next",
    cancel_class="elegere-cancel-test-next",
    summarize=lambda result: result_summary(result, "Next certificate test"),
)


def _certificate_text(info: CertificateInfo) -> str:
    return (
        f"{info.subject}, thumbprint {info.thumbprint_sha1}, valid until "
        f"{info.not_after:%Y-%m-%d} ({info.days_left} days left)"
    )


def _when(moment: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC"


class CertificateRolloverView(ipywidgets.VBox):
    """The rollover box of Update; every control is an attribute a test can click."""

    def __init__(
        self,
        server: EmailServer,
        calls: RolloverCalls,
        *,
        on_changed: Callable[[EmailServer, str], None],
        run_in_thread: Runner | None = None,
    ) -> None:
        self.server = server
        self._calls = calls
        self._on_changed = on_changed
        self.title = ipywidgets.HTML("<b>Certificate rollover</b>")
        self.current = css(ipywidgets.HTML(), "elegere-current-certificate")
        self.next = css(ipywidgets.HTML(), "elegere-next-certificate")
        # The rows of the settings' own fields: the same label, kind and messages as the API.
        self.rows = {
            name: FieldRow(FieldSpec.of(name, GraphSettings.model_fields[name]))
            for name in NEXT_CERTIFICATE_FIELDS
        }
        self.fields = {name: row.input for name, row in self.rows.items()}
        self.rows["next_certificate"].input.observe(self._file_chosen, names="value")
        self.upload_button = button("Upload next certificate", "elegere-upload-next", icon="upload")
        self.tracker = TestTracker()
        self.tester = ConnectionTestView(
            tracker=self.tracker,
            prepare=self._prepare_test,
            on_error=lambda _exc: None,
            on_update=self._refresh,
            run_in_thread=run_in_thread,
            wording=NEXT_TEST_WORDING,
        )
        self.test_button = self.tester.test_button
        self.promote_button = button(
            "Promote", "elegere-promote", icon="check", button_style="primary"
        )
        self.drop_button = button("Drop next certificate", "elegere-drop-next", icon="trash")
        self.status = StatusLine("elegere-rollover-status")
        self.upload_button.on_click(self._on_upload_click)
        self.promote_button.on_click(self._on_promote_click)
        self.drop_button.on_click(self._on_drop_click)
        self.note = ipywidgets.HTML(
            '<span class="elegere-note">Upload the renewed certificate here (its .cer to the '
            "app registration in Azure first): the server keeps signing in with the current "
            "one until you promote the next one, once its test passed.</span>"
        )
        super().__init__(
            [
                self.title,
                self.current,
                self.next,
                self.note,
                *self.rows.values(),
                self.upload_button,
                self.tester,
                ipywidgets.HBox([self.promote_button, self.drop_button]),
                self.status,
            ],
            layout=ipywidgets.Layout(margin="8px 0", padding="4px 0"),
        )
        css(self, "elegere-rollover")
        self.load(server)

    # ------------------------------------------------------------ showing

    def load(self, server: EmailServer) -> None:
        """Show the server as stored now."""
        self.server = server
        settings = server.settings
        current = settings.certificate_info
        self.current.value = (
            f"Current certificate: {esc(_certificate_text(current))}"
            if current is not None
            else "Current certificate: none stored."
        )
        if self._next_info is None or self.tracker.status(self._thumbprint) is TestStatus.STALE:
            # Another next certificate (or none): the shown test was of the one before.
            self.tracker.reset()
            self.tester.result = None
            self.tester.stages.value = ""
            self.tester.status.clear()
        self._refresh()

    def _show_next(self) -> None:
        upcoming = self._next_info
        if upcoming is None:
            self.next.value = "No next certificate."
            return
        self.next.value = (
            f"Next certificate: {esc(_certificate_text(upcoming))} — {esc(self._test_text())}"
        )

    def _test_text(self) -> str:
        here = self.tracker.status(self._thumbprint)
        if here is TestStatus.PASSED:
            return "passed its test just now: ready to promote."
        if here is TestStatus.FAILED:
            return "its test just now failed (see below): fix that and test it again."
        test = self.server.settings.next_certificate_test
        if test is None:
            return "not tested yet: test it before promoting it."
        if test.ok:
            return f"passed its test on {_when(test.at)}: ready to promote."
        return f"its test on {_when(test.at)} failed: {test.detail}"

    @property
    def _next_info(self) -> CertificateInfo | None:
        return self.server.settings.next_certificate_info

    @property
    def _thumbprint(self) -> str | None:
        info = self._next_info
        return info.thumbprint_sha256 if info is not None else None

    @property
    def ready(self) -> bool:
        """Whether the next certificate passed a test (just now here, or stored)."""
        here = self.tracker.status(self._thumbprint)
        if here in (TestStatus.PASSED, TestStatus.FAILED):
            return here is TestStatus.PASSED
        test = self.server.settings.next_certificate_test
        return self._next_info is not None and test is not None and test.ok

    def _refresh(self) -> None:
        self._show_next()
        held = self._next_info is not None
        running = self.tracker.running
        set_visible(self.tester, held)
        set_visible(self.promote_button, held)
        set_visible(self.drop_button, held)
        self.test_button.disabled = running or not held
        self.promote_button.disabled = running or not self.ready
        self.drop_button.disabled = running
        self.upload_button.disabled = running
        self.upload_button.description = (
            "Replace next certificate" if held else "Upload next certificate"
        )

    # ------------------------------------------------------------ actions

    def _prepare_test(self) -> tuple[str, Run]:
        """The next certificate's test, tracked by its thumbprint: a pass counts for it."""
        info = self._next_info
        if info is None:
            raise InvalidSettings("Upload the next certificate first, then test it.")
        return info.thumbprint_sha256, self._calls.test

    def _file_chosen(self, _change: object = None) -> None:
        row = self.rows["next_certificate"]
        row.file_name.value = uploaded_name(row.input)

    def _values(self) -> tuple[bytes | None, str | None, str | None]:
        data = self.rows["next_certificate"].get()
        password = self.rows["next_certificate_password"].get() or None
        alias = (self.rows["next_certificate_alias"].get() or "").strip() or None
        return data, password, alias

    @handles_errors
    def _on_upload_click(self, _button: object = None) -> None:
        for row in self.rows.values():
            row.show_error(None)
        data, password, alias = self._values()
        if data is None:
            label = FIELD_LABELS["next_certificate"]
            self.rows["next_certificate"].show_error(
                f"Choose the {label} file: the renewed .pfx (or .p12, or .pem with its key)."
            )
            self.status.error("Choose the next certificate's file first.")
            return
        self.status.busy("Uploading…")
        server = self._calls.upload(data, password, alias, self.server.version)
        self.clear_secrets()
        self._changed(
            server, "Next certificate stored; test it, then promote it when the test passes."
        )

    @handles_errors
    def _on_promote_click(self, _button: object = None) -> None:
        self.status.busy("Promoting…")
        server = self._calls.promote(self.server.version)
        info = server.settings.certificate_info
        what = _certificate_text(info) if info is not None else "the next certificate"
        self._changed(
            server,
            f"Promoted: the server now signs in with {what}. Remove the old certificate from "
            "the app registration in Azure once nothing else uses it.",
        )

    @handles_errors
    def _on_drop_click(self, _button: object = None) -> None:
        self.status.busy("Dropping…")
        server = self._calls.drop(self.server.version)
        self._changed(server, "Next certificate dropped; the current one stays as it was.")

    def _changed(self, server: EmailServer, message: str) -> None:
        self._on_changed(server, message)
        self.status.ok(message)

    def show_error(self, exc: ElegereError) -> None:
        if isinstance(exc, InvalidSettings) and exc.field_errors:
            for error in exc.field_errors:
                if error.field in self.rows:
                    self.rows[error.field].show_error(error.message)
        self.status.error(str(exc))

    # ------------------------------------------------------------ lifetime

    def clear_secrets(self) -> None:
        for row in self.rows.values():
            row.clear()

    def close(self) -> None:
        tracker = getattr(self, "tracker", None)  # close() also runs from Widget.__del__
        if tracker is not None:
            tracker.cancel()
        if "rows" in self.__dict__:
            self.clear_secrets()
        close_tree(self)
