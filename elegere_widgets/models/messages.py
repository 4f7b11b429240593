"""Messages the platform hands to the service to send, and what became of them."""

from __future__ import annotations

from datetime import datetime
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from typing import Annotated, Any, Literal

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

#: A subject longer than this cannot be one header line (RFC 5322 §2.1.1).
MAX_SUBJECT = 998
MAX_RECIPIENTS = 100
MAX_BATCH = 500
MAX_IDEMPOTENCY_KEY = 200

SenderKind = Literal["custom_action", "scheduler_job", "notification"]
NotificationEvent = Literal["action", "tag", "reply", "account"]
MessageStatus = Literal["queued", "sending", "retrying", "sent", "failed"]
EVENTS: tuple[str, ...] = ("action", "tag", "reply", "account")
SENDER_KINDS: tuple[str, ...] = ("custom_action", "scheduler_job", "notification")


def _no_line_breaks(value: str, what: str) -> str:
    # A CR or LF in a header value would end the header: whatever follows becomes a header
    # (Bcc:, a second body...) of the mail the worker writes.
    if "\r" in value or "\n" in value:
        raise ValueError(f"Remove the line break from the {what}: a header is one line.")
    return value


def _storable(value: str, what: str) -> str:
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValueError(
            f"The {what} contains a character that is not text (NUL or an unpaired "
            "surrogate); type it again."
        )
    return value


def check_address(value: str, what: str = "address") -> str:
    """One mailbox, ``addr@example.org`` or ``Name <addr@example.org>``, normalized.

    Internationalized domains (and local parts, with SMTPUTF8) are allowed; the domain stays
    in Unicode here, the worker turns it into IDNA where a server needs ASCII.
    """
    if not isinstance(value, str):
        raise ValueError(f"Each {what} must be text, such as someone@example.org.")
    _storable(value, what)
    _no_line_breaks(value, what)
    value = value.strip()
    if not value:
        raise ValueError(f"Enter the {what}, for example someone@example.org.")
    found = getaddresses([value])
    name, addr = found[0] if len(found) == 1 else ("", "")
    if not addr or ("<" in value and not value.endswith(">")):
        raise ValueError(
            f"{value!r} is not an email address; write someone@example.org or "
            "Name <someone@example.org>."
        )
    try:
        checked = validate_email(addr, check_deliverability=False, allow_smtputf8=True)
    except EmailNotValidError as exc:
        raise ValueError(
            f"{addr!r} is not a valid email address ({exc}); write someone@example.org."
        ) from None
    if not name:
        return checked.normalized
    return str(Address(display_name=name, username=checked.local_part, domain=checked.domain))


def addr_spec(address: str) -> str:
    """The bare address of a checked ``Name <addr>`` (what an SMTP RCPT TO carries)."""
    return parseaddr(address)[1]


def _address(what: str) -> Any:
    return AfterValidator(lambda v: check_address(v, what))


Recipient = Annotated[str, _address("recipient address")]


class MessageSender(BaseModel):
    """Who sends: a custom action or a scheduler job (by id, or by name), or a notification
    (by event)."""

    model_config = ConfigDict(extra="forbid")

    kind: str = Field(description="custom_action, scheduler_job or notification.")
    id: str | None = Field(None, description="The custom action's or scheduler job's id.")
    name: str | None = Field(
        None,
        description="Or its name, instead of the id (unique in the workspace, whatever its "
        "case); the service keeps the id it names.",
    )
    event: str | None = Field(
        None, description="A notification's event: action, tag, reply, account."
    )

    @model_validator(mode="after")
    def _complete(self) -> MessageSender:
        if self.kind not in SENDER_KINDS:
            raise ValueError(
                "The sender's kind must be custom_action, scheduler_job or notification."
            )
        if self.kind == "notification":
            if self.event not in EVENTS or self.id is not None or self.name is not None:
                raise ValueError(
                    "A notification sender needs an event: action, tag, reply or account "
                    '(and no id or name), e.g. {"kind": "notification", "event": "reply"}.'
                )
            return self
        given = [v for v in (self.id, self.name) if v is not None]
        if len(given) != 1 or not given[0].strip() or self.event is not None:
            what = self.kind.replace("_", " ")
            raise ValueError(
                f"A {self.kind} sender needs the id or the name of the {what} (one of them, "
                f'and no event), e.g. {{"kind": "{self.kind}", "id": "..."}} or '
                f'{{"kind": "{self.kind}", "name": "..."}}.'
            )
        return self

    @property
    def ref(self) -> str:
        """What the store keeps: the id (a name is looked up first), or a notification's
        event."""
        value = self.event if self.kind == "notification" else self.id
        if value is None:  # a name the service has not looked up: a wiring bug
            raise ValueError(f"the {self.kind} '{self.name}' was not looked up")
        return value

    def to_wire(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


def _text(value: Any, info: ValidationInfo) -> Any:
    if isinstance(value, str):
        _storable(value, info.field_name or "text")
    return value


class MessageIn(BaseModel):
    """One message to send. Recipients across to, cc and bcc: at least 1, at most 100."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    sender: MessageSender
    to: list[Recipient] = Field(default_factory=list)
    cc: list[Recipient] = Field(default_factory=list)
    bcc: list[Recipient] = Field(default_factory=list)
    reply_to: Annotated[str, _address("reply-to address")] | None = None
    subject: str = Field(description=f"One line, at most {MAX_SUBJECT} characters.")
    text: str | None = None
    html: str | None = None
    idempotency_key: str | None = Field(
        None,
        max_length=MAX_IDEMPOTENCY_KEY,
        description="A repeat with the same key and body answers the first message (200).",
    )

    _storable_text = field_validator("text", "html", "idempotency_key", mode="before")(_text)

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        _storable(value, "subject")
        _no_line_breaks(value, "subject")
        if len(value) > MAX_SUBJECT:
            raise ValueError(
                f"The subject is {len(value)} characters; shorten it to at most {MAX_SUBJECT}."
            )
        return value

    @model_validator(mode="after")
    def _recipients(self) -> MessageIn:
        count = len(self.recipient_addresses())
        if count == 0:
            raise ValueError("Add at least one recipient in to, cc or bcc.")
        if count > MAX_RECIPIENTS:
            raise ValueError(
                f"The message has {count} recipients; send it to at most {MAX_RECIPIENTS} "
                "(split it into several messages)."
            )
        return self

    def recipient_addresses(self) -> list[str]:
        """Every bare address across to, cc and bcc, each once, in order."""
        return list(dict.fromkeys(addr_spec(a) for a in (*self.to, *self.cc, *self.bcc)))

    def body_bytes(self) -> int:
        """What counts against the size limit: subject and bodies, as UTF-8."""
        return sum(
            len(p.encode("utf-8", "replace")) for p in (self.subject, self.text, self.html) if p
        )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


def _at_most_batch(value: Any) -> Any:
    if isinstance(value, list) and not 1 <= len(value) <= MAX_BATCH:
        raise ValueError(
            f"Send from 1 to {MAX_BATCH} messages in one batch (this one has {len(value)})."
        )
    return value


class MessageBatch(BaseModel):
    """Up to 500 messages in one request; answered in order."""

    model_config = ConfigDict(extra="forbid")

    messages: Annotated[list[MessageIn], BeforeValidator(_at_most_batch)]


def _one_or_batch(value: Any) -> str:
    if isinstance(value, dict) and "messages" in value:
        return "batch"
    if isinstance(value, MessageBatch):
        return "batch"
    return "message"


#: The body of ``POST /workspaces/{ws}/messages``: one message, or ``{"messages": [...]}``.
MessageSubmission = Annotated[
    Annotated[MessageIn, Tag("message")] | Annotated[MessageBatch, Tag("batch")],
    Discriminator(_one_or_batch),
]


# ---------------------------------------------------------------- out


class MessageAccepted(BaseModel):
    """A message the service took: it is in the store, its Message-ID fixed."""

    id: str
    status: MessageStatus
    email_server_id: str
    message_id: str = Field(description="The RFC 5322 Message-ID, e.g. <…@acme.example>.")


class AcceptedBatch(BaseModel):
    """The messages of a batch, in the order sent."""

    items: list[MessageAccepted]


class Attempt(BaseModel):
    """One try at delivering a message through a server."""

    at: datetime
    email_server_id: str
    email_server_name: str
    outcome: str = Field(description="sent, deferred or failed.")
    stage: str | None = Field(None, description="Where the attempt ended: connect, tls, ….")
    reply_code: int | None = None
    reply: str | None = Field(None, description="The server's reply (or what went wrong).")


class RecipientState(BaseModel):
    status: str = Field(description="pending, sent or failed.")
    reply: str | None = None


class MessageSummary(BaseModel):
    """A message as listed: who sent it to whom through which server, and how it stands.

    The body is never shown; it is purged some days after the message is final.
    """

    id: str
    status: MessageStatus
    sender: MessageSender
    to: list[str]
    cc: list[str] = Field(default_factory=list)
    bcc: list[str] = Field(default_factory=list)
    reply_to: str | None = None
    subject: str
    message_id: str
    email_server_id: str
    recipients: dict[str, RecipientState] = Field(default_factory=dict)
    next_attempt_at: datetime | None = None
    created_at: datetime
    finished_at: datetime | None = None
    last_reply: str | None = None
    body_purged: bool = False


class Message(MessageSummary):
    """One message with every attempt, oldest first."""

    attempts: list[Attempt] = Field(default_factory=list)
