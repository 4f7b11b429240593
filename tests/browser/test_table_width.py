"""The table in a narrow page (JupyterLab's cells, a side-by-side window) and a wide one: every
cell shows all its text — wrapped when the column is narrow, never cut."""

from __future__ import annotations

import pytest

from tests.browser.conftest import Browse, Site

# Each cell whose content overflows its box, with its text: what a person would not see.
CLIPPED = """() => [...document.querySelectorAll(
    '.elegere-table-header > *, .elegere-row > :not(button), .elegere-row .widget-html-content,'
    + ' .elegere-row > button.elegere-cell-name, .elegere-row-actions > button'
  )].filter(el => el.offsetParent !== null)
   .filter(el => el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1)
   .map(el => `${el.className}: ${el.innerText.trim()}`
     + ` (${el.scrollWidth}x${el.scrollHeight} in ${el.clientWidth}x${el.clientHeight})`)"""


@pytest.fixture(scope="module")
def dashboard_url(site: Site) -> str:
    return site.voila(token=True)


@pytest.mark.parametrize("width", [900, 1400])
def test_no_cell_hides_its_text(dashboard_url: str, browse: Browse, width: int) -> None:
    page = browse.page
    page.set_viewport_size({"width": width, "height": 1000})
    browse.open(dashboard_url, ".elegere-row")
    page.locator(".elegere-row").nth(1).wait_for()
    key = page.locator(".elegere-row", has_text="Acme Relay").locator(".elegere-cell-key")
    assert key.inner_text().strip() == "smtp.acme.example:587"
    assert page.evaluate(CLIPPED) == []
    # The columns still line up: each header cell starts where its rows' cells start.
    header = page.locator(".elegere-table-header > *").first.bounding_box()
    cell = page.locator(".elegere-row .elegere-cell-name").first.bounding_box()
    assert header is not None and cell is not None and abs(header["x"] - cell["x"]) < 1
    browse.shot(f"table-{width}")
    browse.assert_clean()
