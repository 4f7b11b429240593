"""``SmtpForm`` and ``GraphForm``: the settings of one server type, shared by the Add Email
Server wizard (empty) and the Update Email Server form (filled from an ``EmailServer``).

A form turns its values into a spec (``SmtpServerSpec``/``GraphServerSpec``) or a patch
(``EmailServerPatch``, only what changed) with the models the service uses, so a field's
message is the API's message. It shows a field's error when the user leaves the field, and
the service's ``InvalidSettings.field_errors`` on the same fields. In an update, an empty
secret means "keep the stored one".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar

import ipywidgets

from ..errors import InvalidSettings
from ..models import EmailServer, EmailServerPatch, FieldError
from ..models.servers import (
    moved_endpoint_fields,
    other_sign_in_fields,
    reenter_secret_message,
)
from .common import close_tree, css, logger, set_visible
from .fields import GRAPH_FIELDS, SMTP_FIELDS, FieldRow, FieldSpec, uploaded_name
from .state import PortSuggestion, Spec, fingerprint, validate_spec


class ServerForm(ipywidgets.VBox):
    """The fields of one server type. ``fields[name]`` is the input a test sets or clicks."""

    server_type: ClassVar[str]
    FIELDS: ClassVar[tuple[FieldSpec, ...]]

    def __init__(self, server: EmailServer | None = None) -> None:
        self.server: EmailServer | None = None
        self.rows: dict[str, FieldRow] = {spec.name: FieldRow(spec) for spec in self.FIELDS}
        self.fields: dict[str, ipywidgets.ValueWidget] = {n: r.input for n, r in self.rows.items()}
        self._touched: set[str] = set()
        self._listeners: list[Callable[[], None]] = []
        self._loading = False
        self._certificate_note = ""
        for name, row in self.rows.items():
            row.input.observe(lambda _change, name=name: self._on_value(name), names="value")
        super().__init__(list(self.rows.values()))
        css(self, "elegere-form", f"elegere-form-{self.server_type}")
        if server is not None:
            self.load(server)

    # ------------------------------------------------------------ filling

    @property
    def secret_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.FIELDS if spec.secret)

    def load(self, server: EmailServer) -> None:
        """Fill the fields from a stored server: secrets empty, meaning "keep the stored one"."""
        self._loading = True
        try:
            self.server = server
            values = {"name": server.name, **server.settings.model_dump()}
            for name, row in self.rows.items():
                if row.spec.secret:
                    row.clear()
                else:
                    row.set(values.get(name))
            self._after_load(server)
            self._secret_notes()
        finally:
            self._loading = False
        self._touched.clear()
        self.clear_errors()
        self._notify()

    def _after_load(self, server: EmailServer) -> None:
        """Type-specific extras after a load (the port rule, the certificate's details)."""

    def _note_stored_certificate(self, server: EmailServer) -> None:
        info = getattr(server.settings, "certificate_info", None)
        self._certificate_note = (
            f"Stored: {info.subject}, valid until {info.not_after:%Y-%m-%d} "
            f"({info.days_left} days left). Upload another file to replace it."
            if info is not None
            else ""
        )

    def _certificate_chosen(self) -> None:
        row = self.rows["certificate"]
        row.file_name.value = uploaded_name(row.input)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call ``listener`` after every change of a field."""
        self._listeners.append(listener)

    # ------------------------------------------------------------ values

    def settings_values(self) -> dict[str, Any]:
        """The settings as typed; an empty secret is left out (kept, or not set), and so are
        the rows the form does not show (those of the other way to sign in)."""
        out: dict[str, Any] = {}
        hidden = self.hidden_rows()
        for name, row in self.rows.items():
            if name == "name" or name in hidden or (row.spec.secret and row.is_empty()):
                continue
            out[name] = row.get()
        return out

    def hidden_rows(self) -> tuple[str, ...]:
        """Rows the current choices leave out (SMTP: the other way to sign in)."""
        return ()

    def _show_rows(self) -> None:
        hidden = self.hidden_rows()
        for name, row in self.rows.items():
            set_visible(row, name not in hidden)

    def validate(self, *, server_id: str | None = None) -> tuple[Spec | None, dict[str, str]]:
        return validate_spec(
            self.server_type,
            self.rows["name"].get(),
            self.settings_values(),
            server_id=server_id,
        )

    def spec(self, *, server_id: str | None = None) -> Spec:
        """The spec of these values; InvalidSettings (and the messages shown) when invalid."""
        spec, errors = self.validate(server_id=server_id)
        self._touched.update(self.rows)
        self._show(errors)
        if spec is None:
            raise InvalidSettings(
                "Some fields need fixing; see the messages below them.",
                field_errors=[FieldError(field=f, message=m) for f, m in errors.items()],
            )
        return spec

    def fingerprint(self, *, server_id: str | None = None) -> str | None:
        """The fingerprint of the current values, or None while they are invalid."""
        spec, _ = self.validate(server_id=server_id)
        return fingerprint(spec) if spec is not None else None

    def patch(self) -> EmailServerPatch:
        """Only what changed since the load; a secret only when one was typed or uploaded."""
        if self.server is None:
            raise RuntimeError("patch() is for a form filled from a stored server.")
        spec = self.spec()
        stored = self.server.settings.model_dump()
        public = spec.settings.public()
        # A key the stored view lacks is a setting the change brings in (OAuth 2.0's fields
        # when Authentication switches); the default Authentication, back from OAuth, is sent.
        settings: dict[str, Any] = {k: v for k, v in public.items() if stored.get(k) != v}
        authentication = getattr(spec.settings, "authentication", None)
        if authentication is not None and stored.get("authentication", "password") != (
            authentication
        ):
            settings["authentication"] = authentication
        for secret in self.secret_names:
            value = getattr(spec.settings, secret)
            if value is not None:
                settings[secret] = value
        renamed = spec.name if spec.name != self.server.name else None
        return EmailServerPatch(name=renamed, settings=settings)

    # ------------------------------------------------------------ errors

    def show_errors(self, errors: Mapping[str, str] | Iterable[FieldError]) -> dict[str, str]:
        """Show errors next to their fields; the ones no field of this form has, back."""
        pairs = (
            dict(errors) if isinstance(errors, Mapping) else {e.field: e.message for e in errors}
        )
        elsewhere = {f: m for f, m in pairs.items() if f not in self.rows}
        for field, message in pairs.items():
            if field in self.rows:
                self._touched.add(field)
                self.rows[field].show_error(message)
        return elsewhere

    def error_for(self, name: str) -> str:
        """The message shown below a field ("" when none)."""
        return self.rows[name].error_text

    @property
    def errors(self) -> dict[str, str]:
        return {n: r.error_text for n, r in self.rows.items() if r.error_text}

    def clear_errors(self) -> None:
        for row in self.rows.values():
            row.show_error(None)

    def _show(self, errors: Mapping[str, str]) -> None:
        for name, row in self.rows.items():
            row.show_error(errors.get(name) if name in self._touched else None)

    # ------------------------------------------------------------ secrets and lifetime

    def clear_secrets(self) -> None:
        """Empty every secret field: after a save, nothing secret stays in a widget."""
        for name in self.secret_names:
            self.rows[name].clear()

    def close(self) -> None:
        if "rows" in self.__dict__:  # close() also runs from Widget.__del__
            self.clear_secrets()
        close_tree(self)

    def summary_rows(self) -> list[tuple[str, str]]:
        """Every setting for the Summary: secrets only as "set"/"not set"."""
        out = []
        hidden = self.hidden_rows()
        for name, row in self.rows.items():
            if name in hidden:
                continue
            if row.spec.secret:
                value = "not set" if row.is_empty() else "set"
            elif row.spec.kind == "bool":
                value = "Yes" if row.get() else "No"
            elif row.spec.kind == "choice":
                value = dict(row.spec.options).get(row.get(), str(row.get()))
            else:
                value = str(row.get()).strip() or "—"
            out.append((row.spec.label, value))
        return out

    # ------------------------------------------------------------ events

    def _on_value(self, name: str) -> None:
        if self._loading:
            return
        try:
            self._touched.add(name)
            self._field_changed(name)
            _, errors = self.validate()
            self._show(errors)
            self._secret_notes()
        except Exception:  # validation raises nothing on purpose: this is a bug
            logger.exception("Bug while checking the field %r", name)
        self._notify()  # the owners' listeners own their errors

    def _field_changed(self, name: str) -> None:
        """Type-specific reactions to a change (the port suggestion)."""

    def _secret_notes(self) -> None:
        """In an update, say under each secret whether the stored one will be kept."""
        if self.server is None:
            return
        stored = self.server.settings.model_dump()
        spec, _ = self.validate()
        current = spec.settings.public() if spec is not None else self.settings_values()
        # The same rule the service applies; here only a note, the service's answer decides.
        moved = moved_endpoint_fields(self.server_type, stored, current)
        for name in self.secret_names:
            row = self.rows[name]
            label = row.spec.label
            if not row.is_empty():
                note = f"The {label} you entered replaces the stored one when you save."
            elif not self.server.secrets_set.get(name, False):
                note = "Not set — optional." if name != "certificate" else "Not set."
            elif moved:
                note = reenter_secret_message(name, moved)
            else:
                note = "Stored — leave empty to keep it."
            if name == "certificate" and self._certificate_note and row.is_empty() and not moved:
                note = self._certificate_note
            row.show_note(note)

    def _notify(self) -> None:
        for listener in list(self._listeners):
            listener()


class SmtpForm(ServerForm):
    """Name, Server, Port, Use SSL, Account, Sender Address, Authentication, then Password, or
    with OAuth 2.0 (Microsoft 365) the app registration's rows as the Graph type asks them."""

    server_type = "smtp"
    FIELDS = SMTP_FIELDS

    def __init__(self, server: EmailServer | None = None) -> None:
        self.ports = PortSuggestion()
        super().__init__(server)
        self._show_rows()
        if server is None:
            self._loading = True
            self.rows["port"].set(587)
            self._loading = False

    def hidden_rows(self) -> tuple[str, ...]:
        if "authentication" not in self.rows:
            return ()
        return other_sign_in_fields("smtp", self.rows["authentication"].get())

    def _after_load(self, server: EmailServer) -> None:
        self.ports = PortSuggestion(self.rows["port"].get())
        self._note_stored_certificate(server)
        self._show_rows()

    def _field_changed(self, name: str) -> None:
        if name == "use_ssl":
            port = self.ports.use_ssl_changed(bool(self.rows["use_ssl"].get()))
            if port is not None:
                self.rows["port"].set(port)  # fires _on_value("port"), which sees our port
        elif name == "port":
            self.ports.port_changed(self.rows["port"].get())
        elif name == "authentication":
            self._show_rows()
        elif name == "certificate":
            self._certificate_chosen()


class GraphForm(ServerForm):
    """Name, Account, Tenant ID, Client ID, Certificate, Certificate Alias, Certificate Password."""

    server_type = "microsoft_graph"
    FIELDS = GRAPH_FIELDS

    def _after_load(self, server: EmailServer) -> None:
        self._note_stored_certificate(server)

    def _field_changed(self, name: str) -> None:
        if name == "certificate":
            self._certificate_chosen()


FORMS: dict[str, type[ServerForm]] = {"smtp": SmtpForm, "microsoft_graph": GraphForm}


def form_for(server_type: str, server: EmailServer | None = None) -> ServerForm:
    """The form of a type: empty for a new server, filled for a stored one."""
    return FORMS[server_type](server)
