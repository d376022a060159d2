"""The command-line reference, generated from the Typer app at every site build.

`docs/cli.md` holds the line `<!-- cli-reference -->`; this MkDocs hook
(mkdocs.yml: `hooks:`) replaces it with one section per command: its help, its
usage line, and its arguments and options grouped by help panel, each with
its value, default and help as the app itself declares them. Nothing is
copied by hand, so the reference cannot drift from `b12lab --help`.

`python tools/cli_reference.py` prints the generated Markdown.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

MARKER = "<!-- cli-reference -->"
_SPECIAL = re.compile(r"([\\`*_\[\]<>|])")


def _text(value: str) -> str:
    """Help text as Markdown text: one paragraph, nothing read as markup."""
    return _SPECIAL.sub(r"\\\1", " ".join(value.split()))


def _default(param: Any) -> str:
    if isinstance(param.default, bool) and getattr(param, "secondary_opts", None):
        return f"`{(param.opts if param.default else param.secondary_opts)[0]}`"
    if getattr(param, "is_flag", False) and not param.default:
        return ""
    if param.default is None or param.default == () or isinstance(param.default, bool):
        return ""
    default = param.default
    default = getattr(default, "value", default)  # an Enum choice
    return f"`{default}`"


def _value(param: Any, ctx: Any) -> str:
    if getattr(param, "is_flag", False):
        return ""
    if hasattr(param.type, "choices"):
        return " \\| ".join(f"`{choice}`" for choice in param.type.choices)
    if param.param_type_name == "argument":
        return ""
    metavar = param.make_metavar(ctx) if _takes_ctx(param.make_metavar) else param.make_metavar()
    return f"`{metavar}`"


def _takes_ctx(method) -> bool:
    return "ctx" in inspect.signature(method).parameters


def _names(param: Any) -> str:
    if param.param_type_name == "argument":
        return f"`{param.human_readable_name}`"
    names = [*param.opts, *param.secondary_opts]
    return ", ".join(f"`{name}`" for name in names)


def _rows(params: list[Any], ctx: Any) -> list[str]:
    rows = ["| name | value | default | meaning |", "|---|---|---|---|"]
    for param in params:
        help_text = _text(getattr(param, "help", None) or "")
        if getattr(param, "required", False):
            help_text = f"Required. {help_text}".strip()
        rows.append(f"| {_names(param)} | {_value(param, ctx)} | {_default(param)} | {help_text} |")
    return rows


def _command(path: str, command: Any, parent: Any) -> list[str]:
    ctx = command.context_class(command, info_name=path.split()[-1], parent=parent)
    lines = [f"## `{path}`", ""]
    help_text = inspect.cleandoc(command.help or "")
    if help_text:
        paragraphs = [p for p in help_text.split("\n\n") if p.strip()]
        lines += [_text(paragraphs[0]), ""]
        rest = paragraphs[1:]
        if rest:
            lines += ["```text", *("\n\n".join(rest)).splitlines(), "```", ""]
    pieces = command.collect_usage_pieces(ctx)
    lines += ["```text", f"{path} {' '.join(pieces)}".rstrip(), "```", ""]
    panels: dict[str, list[Any]] = {}
    for param in command.get_params(ctx):
        if getattr(param, "hidden", False):
            continue
        default_panel = "Arguments" if param.param_type_name == "argument" else "Options"
        panel = getattr(param, "rich_help_panel", None) or default_panel
        panels.setdefault(panel, []).append(param)
    # The panels in the app's order; the generic "Options" (--help, mostly) last.
    order = sorted(panels, key=lambda name: (name != "Arguments", name == "Options"))
    for panel in order:
        lines += [f"**{_text(panel)}**", "", *_rows(panels[panel], ctx), ""]
    if command.epilog:
        lines += ["```text", *inspect.cleandoc(command.epilog).splitlines(), "```", ""]
    return lines


def render() -> str:
    """The reference as Markdown, from the app that `b12lab` runs."""
    import typer

    from b12lab.cli import app

    group = typer.main.get_command(app)
    root = group.context_class(group, info_name="b12lab")
    lines = _command("b12lab", group, None)
    for name in group.list_commands(root):
        command = group.get_command(root, name)
        if command is not None and not command.hidden:
            lines += _command(f"b12lab {name}", command, root)
    return "\n".join(lines).rstrip() + "\n"


def on_page_markdown(markdown: str, **kwargs) -> str:
    """MkDocs hook: the marker line becomes the generated reference."""
    if MARKER in markdown:
        markdown = markdown.replace(MARKER, render())
    return markdown


if __name__ == "__main__":
    print(render(), end="")
