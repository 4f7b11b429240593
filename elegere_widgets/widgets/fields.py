"""The input of each setting, labelled as in the product, with its error line below it.

A form's rows come from its models (:func:`form_fields`): the spec's name, then the settings'
fields in order, each with the label, placeholder and secret flag its pydantic field carries;
the input follows from the field's type. ipywidgets has no blur event: Text fields use ``continuous_update=False``, so their value
commits when the user leaves the field (or presses Enter), and the form validates on that
change. Secrets use ``Password`` (masked; its repr never shows the value).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, get_args

import ipywidgets
from pydantic import BaseModel, SecretBytes, SecretStr
from pydantic.fields import FieldInfo

from ..models import GraphServerSpec, SmtpServerSpec
from ..models.fields import choices, has_own_form, is_derived, is_secret, label, placeholder
from .common import css, esc, set_visible

Kind = Literal["text", "int", "bool", "password", "file", "choice"]

CERTIFICATE_ACCEPT = ".pfx,.p12,.cer,.crt,.pem"
LABEL_WIDTH = "150px"
INPUT_WIDTH = "520px"


@dataclass(frozen=True)
class FieldSpec:
    """One field of a form: its API name, the input it needs, its label and placeholder."""

    name: str
    kind: Kind
    label: str
    placeholder: str = ""
    secret: bool = False
    #: For a choice: (value, label) pairs, the first the default.
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, name: str, field: FieldInfo) -> FieldSpec:
        """The row of a pydantic field, from its type, title and markers."""
        return cls(
            name,
            _kind(field),
            label(name, field),
            placeholder(field),
            is_secret(field),
            choices(field),
        )


def _kind(field: FieldInfo) -> Kind:
    if choices(field):
        return "choice"
    types = set(get_args(field.annotation)) or {field.annotation}
    if SecretBytes in types:
        return "file"
    if SecretStr in types:
        return "password"
    if bool in types:
        return "bool"
    return "int" if int in types else "text"


def form_fields(spec: type[SmtpServerSpec] | type[GraphServerSpec]) -> tuple[FieldSpec, ...]:
    """The rows of a server type's form: the name, then every setting in the model's order."""
    settings = spec.model_fields["settings"].annotation
    if not (isinstance(settings, type) and issubclass(settings, BaseModel)):
        raise TypeError(f"{spec.__name__}.settings must be a model, not {settings!r}")
    return (
        FieldSpec.of("name", spec.model_fields["name"]),
        *(
            FieldSpec.of(name, field)
            for name, field in settings.model_fields.items()
            if not is_derived(field) and not has_own_form(field)
        ),
    )


SMTP_FIELDS = form_fields(SmtpServerSpec)
GRAPH_FIELDS = form_fields(GraphServerSpec)


_TYPED_INPUTS: dict[str, type[ipywidgets.ValueWidget]] = {
    "text": ipywidgets.Text,
    "password": ipywidgets.Password,
    "int": ipywidgets.IntText,
}


def make_input(spec: FieldSpec) -> ipywidgets.ValueWidget:
    """The input widget of a field, with the classes ``elegere-field elegere-field-<name>``."""
    style = {"description_width": LABEL_WIDTH}
    widget: ipywidgets.ValueWidget
    if spec.kind in _TYPED_INPUTS:
        extra = {"placeholder": spec.placeholder} if spec.kind == "text" else {}
        # continuous_update=False: the value commits when the user leaves the field.
        widget = _TYPED_INPUTS[spec.kind](
            description=spec.label,
            continuous_update=False,
            style=style,
            layout={"width": INPUT_WIDTH},
            **extra,
        )
    elif spec.kind == "bool":
        widget = ipywidgets.Checkbox(description=spec.label, indent=True, style=style)
    elif spec.kind == "choice":
        widget = ipywidgets.Dropdown(
            options=[(text, value) for value, text in spec.options],
            value=spec.options[0][0],
            description=spec.label,
            style=style,
            layout={"width": INPUT_WIDTH},
        )
    else:
        widget = ipywidgets.FileUpload(
            accept=CERTIFICATE_ACCEPT,
            multiple=False,
            description="Choose file…",
            tooltip=f"{spec.label}: a {CERTIFICATE_ACCEPT.replace(',', ', ')} file",
        )
    return css(widget, "elegere-field", f"elegere-field-{spec.name}")


class FieldRow(ipywidgets.VBox):
    """The input, and below it the field's error (hidden while there is none)."""

    def __init__(self, spec: FieldSpec) -> None:
        self.spec = spec
        self.input = make_input(spec)
        self.error = css(ipywidgets.HTML(), "elegere-field-error", f"elegere-error-{spec.name}")
        self.error_text = ""
        self.note = css(ipywidgets.HTML(), "elegere-field-note", f"elegere-note-{spec.name}")
        set_visible(self.error, False)
        set_visible(self.note, False)
        if spec.kind == "file":
            # Right-aligned like the other fields' descriptions.
            label = ipywidgets.HTML(
                f'<div class="elegere-file-label">{esc(spec.label)}</div>',
                layout=ipywidgets.Layout(width=LABEL_WIDTH),
            )
            self.file_name = css(ipywidgets.Label(""), f"elegere-file-name-{spec.name}")
            top: ipywidgets.Widget = ipywidgets.HBox([label, self.input, self.file_name])
        else:
            top = self.input
        margin = f"0 0 0 calc({LABEL_WIDTH} + 4px)"
        self.error.layout.margin = margin
        self.note.layout.margin = margin
        super().__init__([top, self.note, self.error])
        css(self, "elegere-field-row", f"elegere-field-row-{spec.name}")

    def show_error(self, message: str | None) -> None:
        self.error_text = message or ""
        self.error.value = (
            f'<span class="elegere-small-error">{esc(message)}</span>' if message else ""
        )
        set_visible(self.error, bool(message))

    def show_note(self, message: str | None) -> None:
        self.note.value = (
            f'<span class="elegere-small-note">{esc(message)}</span>' if message else ""
        )
        set_visible(self.note, bool(message))

    # ------------------------------------------------------------ values

    def get(self) -> Any:
        """The value for the settings: text stripped by the models, a file as bytes or None."""
        if self.spec.kind == "file":
            return uploaded_bytes(self.input)
        return self.input.value

    def set(self, value: Any) -> None:
        if self.spec.kind == "file":
            self.input.value = ()
        elif self.spec.kind == "int":
            self.input.value = int(value) if value is not None else 0
        elif self.spec.kind == "bool":
            self.input.value = bool(value)
        elif self.spec.kind == "choice":
            values = [v for v, _ in self.spec.options]
            self.input.value = value if value in values else values[0]
        else:
            self.input.value = "" if value is None else str(value)

    def is_empty(self) -> bool:
        value = self.get()
        return value is None or value == "" or value == b""

    def clear(self) -> None:
        """Empty the field (secrets after a save)."""
        if self.spec.kind == "file":
            self.input.value = ()
            self.file_name.value = ""
        elif self.spec.kind in ("text", "password"):
            self.input.value = ""


def uploaded_bytes(upload: ipywidgets.FileUpload) -> bytes | None:
    """The content of the one uploaded file, or None."""
    files = upload.value
    if not files:
        return None
    content = files[0].get("content", b"")
    return bytes(content) if content else None


def uploaded_name(upload: ipywidgets.FileUpload) -> str:
    files = upload.value
    if not files:
        return ""
    first = files[0]
    return f"{first.get('name', 'file')} ({len(bytes(first.get('content', b'')))} bytes)"


def upload_value(name: str, content: bytes) -> tuple[dict[str, Any], ...]:
    """A FileUpload value as the front end sends it: for tests and for scripts."""
    return (
        {
            "name": name,
            "type": "application/octet-stream",
            "size": len(content),
            "content": memoryview(content),
            "last_modified": datetime.now(UTC),
        },
    )
