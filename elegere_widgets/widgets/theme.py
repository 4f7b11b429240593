"""The widgets' one stylesheet, injected once per panel (and once by the dashboard).

Colours are CSS custom properties made from :mod:`.palette`: a theme or a dark mode is one
rule that sets ``--elegere-*`` again (for example under JupyterLab's
``body[data-jp-theme-light="false"]``). Every rule hangs off an ``elegere-*`` class, so the
sheet styles nothing else on the page. Rules start with ``.jupyter-widgets``, the class of
every widget's element, so that they outweigh the notebook's own rules for the same tags
(``td``, ``h3``) as the inline styles they replace did.
"""

from __future__ import annotations

import ipywidgets

from .common import css, set_visible
from .palette import PALETTE

_PROPERTIES = "\n".join(f"  --elegere-{name}: {value};" for name, value in PALETTE.items())

_W = ".jupyter-widgets"

RULES = f"""
{_W} .elegere-tone-info {{ color: var(--elegere-text); }}
{_W} .elegere-tone-ok {{ color: var(--elegere-ok); }}
{_W} .elegere-tone-error {{ color: var(--elegere-error); }}
{_W} .elegere-tone-busy {{ color: var(--elegere-busy); }}
{_W} .elegere-spinner {{ vertical-align: -2px; }}

{_W} .elegere-small-error {{ color: var(--elegere-error); font-size: 90%; }}
{_W} .elegere-small-note {{ color: var(--elegere-muted); font-size: 90%; }}
{_W} .elegere-file-label {{ text-align: right; padding-right: 8px; }}

{_W} .elegere-stage-mark {{ padding-right: 6px; }}
{_W} .elegere-stage-title {{ padding-right: 10px; }}
{_W} .elegere-stage-time {{ padding-right: 10px; color: var(--elegere-muted); }}
{_W} .elegere-stage-hint {{ color: var(--elegere-error); }}
{_W} .elegere-summary-label {{ padding-right: 16px; color: var(--elegere-muted); }}

{_W} .elegere-step-chip {{ padding: 2px 8px; border-radius: 10px; }}
{_W} .elegere-step-chip-current {{
  background: var(--elegere-accent); color: var(--elegere-on-accent); font-weight: bold;
}}
{_W} .elegere-step-chip-done {{ color: var(--elegere-ok); }}
{_W} .elegere-step-chip-todo {{ color: var(--elegere-faint); }}

/* The table's cells wrap, never cut: a narrow page (JupyterLab's cells) shrinks the columns,
   and a long host name breaks anywhere rather than hiding under the next column. */
{_W} .elegere-table-header > .widget-html,
{_W} .elegere-row > .widget-label,
{_W} .elegere-row > .widget-html,
{_W} .elegere-table-header .widget-html-content,
{_W} .elegere-row .widget-html-content {{
  white-space: normal; overflow-wrap: anywhere; text-overflow: clip;
  height: auto; line-height: 1.35;
}}

/* The server's name opens its details: a button that reads as a link and wraps like text. */
{_W}.elegere-name-link, {_W} .elegere-name-link {{
  background: none; border: none; box-shadow: none; padding: 0;
  color: var(--elegere-accent); text-decoration: underline; text-align: left;
  white-space: normal; overflow-wrap: anywhere; text-overflow: clip; overflow: visible;
  height: auto; min-height: 0; line-height: 1.35; cursor: pointer;
}}
{_W} .elegere-row-actions {{ flex-wrap: wrap; gap: 2px; }}
{_W} .elegere-row-actions > .widget-button {{ margin: 0; }}

/* Health: the status and the reason are words; the colour only repeats them. */
{_W} .elegere-badge {{
  padding: 0 6px; border-radius: 8px; font-weight: 600; box-decoration-break: clone;
}}
{_W} .elegere-tone-healthy {{ background: var(--elegere-ok-background); color: var(--elegere-ok-strong); }}
{_W} .elegere-tone-degraded, {_W} .elegere-tone-expiring, {_W} .elegere-tone-warning {{
  background: var(--elegere-warning-background); color: var(--elegere-warning-text);
}}
{_W} .elegere-tone-failing, {_W} .elegere-tone-expired, {_W} .elegere-tone-bad {{
  background: var(--elegere-error-background); color: var(--elegere-error-strong);
}}
{_W} .elegere-cert-soon {{ font-weight: 600; }}

/* A screen reader reads it; the page does not show it. */
{_W} .elegere-sr-only {{
  position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0, 0, 0, 0); white-space: nowrap; border: 0;
}}

/* The details view. */
{_W} .elegere-details h4 {{ margin: 8px 0 4px 0; }}
{_W} .elegere-details h5 {{ margin: 10px 0 4px 0; font-size: 100%; }}
{_W} .elegere-details-table td, {_W} .elegere-details-table th {{
  padding: 1px 12px 1px 0; text-align: left; vertical-align: top;
}}
{_W} .elegere-details-table th {{ color: var(--elegere-muted); font-weight: normal; }}
{_W} .elegere-check-strip {{
  display: flex; flex-wrap: wrap; gap: 2px; list-style: none; padding: 0; margin: 4px 0;
}}
{_W} .elegere-check {{
  width: 18px; height: 18px; line-height: 18px; text-align: center; border-radius: 3px;
  font-size: 12px;
}}
{_W} .elegere-counts span {{ margin-right: 14px; }}

{_W} .elegere-title-detail {{ color: var(--elegere-faint); font-weight: normal; }}
{_W} .elegere-inherited {{
  background: var(--elegere-chip); color: var(--elegere-text-strong);
  padding: 1px 8px; border-radius: 8px; font-size: 90%; box-decoration-break: clone;
}}
{_W} .elegere-notice-box {{
  padding: 8px 12px; border-left: 4px solid var(--elegere-warning-line);
  background: var(--elegere-warning-background);
}}
{_W} .elegere-notice-detail {{ color: var(--elegere-faint); font-size: 90%; margin-top: 4px; }}

{_W} .elegere-caption {{ color: var(--elegere-caption); }}
{_W} .elegere-organization-name {{
  font-size: 22px; font-weight: 600; line-height: 1.2; margin: 0;
}}
{_W} .elegere-sign-in-heading {{ margin: 4px 0; }}
{_W} .elegere-demo-help-body {{ margin: 6px 0 0 16px; }}
{_W} .elegere-demo-help-table {{ margin-top: 4px; }}
{_W} .elegere-demo-help-label {{ padding: 0 12px 0 0; color: var(--elegere-caption); }}
"""

STYLESHEET = f":root {{\n{_PROPERTIES}\n}}\n{RULES}"


def stylesheet() -> ipywidgets.HTML:
    """The stylesheet as a widget to put among a view's children: it shows nothing itself.

    A ``<style>`` applies wherever it is in the document, even in a hidden element; hidden,
    the widget takes no line of its own.
    """
    sheet = css(ipywidgets.HTML(f"<style>{STYLESHEET}</style>"), "elegere-stylesheet")
    set_visible(sheet, False)
    return sheet
