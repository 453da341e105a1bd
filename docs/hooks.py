"""MkDocs hook: the settings page is generated from the config's own help texts and defaults (never written
twice): `<!-- settings -->` in settings.md becomes one table per section."""

from __future__ import annotations

import json

MARK = "<!-- settings -->"


def settings_markdown() -> str:
    from harness.config import field_help
    from harness.config.experiment import field_defaults

    helps, defaults = field_help(), field_defaults()
    sections: dict[str, list[str]] = {}
    for key, text in helps.items():
        section = key.split(".", 1)[0] if "." in key else "top level"
        default = json.dumps(defaults.get(key), default=str)
        cell = text.replace("|", "\\|").replace("\n", " ")
        sections.setdefault(section, []).append(f"| `{key}` | `{default}` | {cell} |")
    out = []
    for section, rows in sections.items():
        out += [f"## {section}", "", "| key | default | what |", "|---|---|---|", *rows, ""]
    return "\n".join(out)


def on_page_markdown(markdown: str, page, config, files) -> str:  # noqa: ARG001 - MkDocs' hook signature
    return markdown.replace(MARK, settings_markdown()) if MARK in markdown else markdown
