"""The message as it goes on the wire: built by the email package, never by hand."""

from __future__ import annotations

import email.policy
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime

__all__ = ["Outgoing", "compose", "needs_smtputf8", "wire_bytes"]

#: Bodies are built 7-bit (quoted-printable or base64): no server needs to offer 8BITMIME.
_BUILD = email.policy.SMTP.clone(cte_type="7bit")


@dataclass(frozen=True)
class Outgoing:
    """What a sender needs of a stored message (read in the claim's transaction)."""

    id: str
    message_id: str
    to: list[str]
    cc: list[str]
    bcc: list[str]
    reply_to: str | None
    subject: str
    text: str | None
    html: str | None
    created_at: datetime
    #: The recipients still to send to: a retry leaves out those sent or refused already.
    pending: list[str]


def needs_smtputf8(sender: str, message: Outgoing) -> bool:
    """Whether an address (not the subject or body: those are encoded) is not ASCII."""
    addresses = [sender, *message.to, *message.cc, *message.bcc]
    if message.reply_to:
        addresses.append(message.reply_to)
    return not all(a.isascii() for a in addresses)


def compose(sender: str, message: Outgoing) -> EmailMessage:
    """From the server's sender address; Bcc only in the envelope; the stored Message-ID.

    Header values go through the email package, which refuses CR/LF in them (ValueError):
    the API refuses them first, this is the second line. Non-ASCII text and html bodies are
    sent quoted-printable or base64 (the package picks the shorter), so no server needs
    8BITMIME; a non-ASCII subject becomes an RFC 2047 encoded word.
    """
    msg = EmailMessage(policy=_BUILD)
    msg["From"] = sender
    if message.to:
        msg["To"] = ", ".join(message.to)
    if message.cc:
        msg["Cc"] = ", ".join(message.cc)
    if message.reply_to:
        msg["Reply-To"] = message.reply_to
    msg["Subject"] = message.subject
    msg["Date"] = format_datetime(message.created_at)
    msg["Message-ID"] = message.message_id
    msg["MIME-Version"] = "1.0"
    text, html = message.text, message.html
    if text is not None or html is None:
        msg.set_content(text or "", charset="utf-8")
        if html is not None:
            msg.add_alternative(html, subtype="html", charset="utf-8")
    else:
        msg.set_content(html, subtype="html", charset="utf-8")
    return msg


def wire_bytes(msg: EmailMessage, *, smtputf8: bool) -> bytes:
    """CRLF line ends; with SMTPUTF8 the headers carry UTF-8 as it is (RFC 6532)."""
    return msg.as_bytes(policy=email.policy.SMTPUTF8 if smtputf8 else email.policy.SMTP)
