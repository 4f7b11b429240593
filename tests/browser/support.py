"""What the browser tests do the same way: sign in, type into a field, read the table and a
test's stages, and fill an SMTP server's first settings in the wizard."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import expect

from tests.browser.conftest import Browse
from tests.fixtures.certs import Pki
from tests.fixtures.smtp import SmtpPeer


def trusting_peer(pki: Pki, peer: SmtpPeer) -> tuple[dict[str, str], list[str]]:
    """``service_extra`` for a service that sends through ``peer``: as an administrator would,
    trust the CA, and let tests reach this port on loopback."""
    return {"ELEGERE_SMTP_CA_FILE": str(pki.ca.cert_path)}, [
        "--egress-allow-port",
        str(peer.port),
    ]


def sign_in(browse: Browse, url: str, email: str) -> None:
    """Open the sign-in form at ``url`` and sign in as ``email`` (the demo password), with
    Enter as many people do."""
    page = browse.page
    browse.open(url, ".elegere-sign-in-email input")
    page.locator(".elegere-sign-in-email input").fill(email)
    password = page.locator(".elegere-sign-in-password input")
    password.fill("demo")
    password.press("Enter")


def type_into(browse: Browse, field: str, text: str, *, within: str = "") -> None:
    """Click the field (in ``within``, a selector, if given), type as a person does, and leave
    it (Tab commits the value)."""
    place = browse.page.locator(within) if within else browse.page
    box = place.locator(f".elegere-field-{field} input")
    box.click()
    box.fill("")
    box.press_sequentially(text)
    box.press("Tab")


def row_names(browse: Browse) -> list[str]:
    cells = browse.page.locator(".elegere-row .elegere-cell-name").all_inner_texts()
    return [c.strip() for c in cells]


def expect_row_names(browse: Browse, names: list[str]) -> None:
    """The table shows exactly ``names``, in this order, once it has settled: after an add or a
    delete the rows' texts change before the row left over goes, so a read at once may see a
    name twice."""
    expect(browse.page.locator(".elegere-row .elegere-cell-name")).to_have_text(names)


def stage_rows(stages: Any) -> list[tuple[str, bool]]:
    """The stage table under ``stages`` (a locator) as a person reads it: each stage's title,
    and whether it shows ✓."""
    rows = stages.locator(".elegere-stage")
    return [
        (
            row.locator(".elegere-stage-title").inner_text().strip(),
            row.locator(".elegere-stage-mark").inner_text().strip() == "✓",
        )
        for row in rows.all()
    ]


def spaced(text: str) -> str:
    """What an option says: ipywidgets writes its spaces as no-break spaces."""
    return text.replace("\xa0", " ").strip()


def type_smtp_server(browse: Browse, name: str, peer: SmtpPeer, account: str, sender: str) -> None:
    """On the wizard's Settings: the name, ``peer`` as the server with SSL, the account and
    the sender address."""
    page = browse.page
    page.locator(".elegere-field-name input").wait_for()
    type_into(browse, "name", name)
    type_into(browse, "server", peer.host)
    page.locator(".elegere-field-use_ssl input[type=checkbox]").check()
    # Checking Use SSL suggests port 465 (from the kernel): type the port only once it shows,
    # or the suggestion lands in the middle of the typing.
    expect(page.locator(".elegere-field-port input")).to_have_value("465")
    type_into(browse, "port", str(peer.port))
    type_into(browse, "account", account)
    type_into(browse, "sender_address", sender)
