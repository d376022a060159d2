"""Shell habits: tab completion, the completion scripts, bare `b12lab`."""

from __future__ import annotations

import pytest

COMPLETE = "_B12LAB_COMPLETE"


def bash_completions(cli, words: str) -> list[str]:
    """What bash offers for the last word of `words` (the bash completion protocol)."""
    parts = words.split(" ")
    result = cli(
        env={COMPLETE: "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(parts) - 1)}
    )
    assert result.exit_code == 0, result.output
    return [line for line in result.stdout.split("\n") if line]


@pytest.mark.parametrize(
    ("words", "expected", "not_expected"),
    [
        (
            "b12lab rules fer-",
            {"fer-may-mask-iron-deficiency", "fer-falling-on-therapy"},
            {"b12-deficient"},
        ),
        ("b12lab rules plt-high-re", {"plt-high-rebound-on-therapy"}, {"plt-critical-low"}),
        ("b12lab interpret --guideline ", {"who", "nice"}, set()),
        ("b12lab interpret --guideline n", {"nice"}, {"who"}),
        ("b12lab interpret --sex ", {"female", "male"}, set()),
        ("b12lab interpret --sex f", {"female"}, {"male"}),
        (
            "b12lab interpret --format ",
            {"text", "json", "markdown", "html", "fhir", "cds-hooks"},
            set(),
        ),
        ("b12lab interpret --format h", {"html"}, {"json"}),
        ("b12lab --show-completion z", {"zsh"}, {"bash"}),
    ],
)
def test_tab_completes_what_the_user_is_typing(cli, words, expected, not_expected):
    offered = set(bash_completions(cli, words))
    assert expected <= offered, offered
    assert not (not_expected & offered)


def test_every_rule_id_is_offered_for_an_empty_word(cli):
    from b12lab.rules import RULES

    assert set(bash_completions(cli, "b12lab rules ")) == set(RULES)


def test_guideline_names_come_from_the_ranges_file_in_force(cli, tmp_path):
    overlay = tmp_path / "lab.yaml"
    overlay.write_text(
        "sources:\n  lab-2026: 'Our laboratory, 2026 validation'\n"
        "guideline_profiles:\n  lab:\n    title: Our laboratory\n"
        "    b12_deficient_below: {value: 150, unit: pmol/L, source: lab-2026}\n"
        "    b12_borderline_below: {value: 230, unit: pmol/L, source: lab-2026}\n"
        "    holotc_deficient_below: {value: 35, unit: pmol/L, source: lab-2026}\n"
        "    holotc_indeterminate_below: {value: 35, unit: pmol/L, source: lab-2026}\n"
    )
    assert cli("ranges", "--ranges", overlay).exit_code == 0, "the overlay is a valid ranges file"
    offered = bash_completions(cli, f"b12lab interpret --ranges {overlay} --guideline ")
    assert {"who", "nice", "lab"} <= set(offered)
    document = cli.json(
        "interpret", "--b12", "140 pmol/L", "--ranges", overlay, "--guideline", "lab", "-f", "json"
    )
    assert (document["guideline"], document["b12_status"]) == ("lab", "deficient")


def test_zsh_and_fish_offer_rule_titles_beside_the_ids(cli):
    result = cli(
        env={
            COMPLETE: "complete_fish",
            "_TYPER_COMPLETE_FISH_ACTION": "get-args",
            "_TYPER_COMPLETE_ARGS": "b12lab rules fer-may",
        }
    )
    assert result.exit_code == 0
    assert result.stdout.strip() == (
        "fer-may-mask-iron-deficiency\tNormal or high ferritin may be hiding an iron deficiency"
    )


@pytest.mark.parametrize(
    ("args", "marker"),
    [
        (["--show-completion", "bash"], "complete -o default -F _b12lab_completion b12lab"),
        (["--show-completion", "zsh"], "compdef"),
        (["--show-completion=zsh"], "#compdef b12lab"),
        (["--show-completion", "fish"], "complete --command b12lab"),
        (["--show-completion", "powershell"], "Register-ArgumentCompleter"),
    ],
)
def test_show_completion_prints_the_script_of_the_named_shell(cli, args, marker):
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert marker in result.stdout
    others = {"bash": "COMPREPLY", "zsh": "compdef", "fish": "complete --command"}
    named = args[-1].split("=")[-1]
    for shell, sign in others.items():
        if shell != named:
            assert sign not in result.stdout, shell


def test_show_completion_without_a_name_uses_the_shell_b12lab_runs_in(cli, monkeypatch):
    import shellingham

    monkeypatch.setattr(shellingham, "detect_shell", lambda: ("zsh", "/bin/zsh"))
    result = cli("--show-completion")
    assert result.exit_code == 0
    assert "#compdef b12lab" in result.stdout


def test_an_unknown_shell_is_one_clear_error(cli):
    result = cli("--show-completion", "tcsh")
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.strip() == (
        "b12lab: error: --show-completion: no completion for tcsh; name the shell: "
        "--show-completion bash (or zsh, fish, powershell, pwsh)"
    )


def test_install_completion_writes_the_named_shells_script(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setattr("pathlib.Path.home", lambda: tmp_path)
    result = cli("--install-completion", "fish")
    assert result.exit_code == 0, result.output
    script = tmp_path / ".config" / "fish" / "completions" / "b12lab.fish"
    assert "complete --command b12lab" in script.read_text()
    assert str(script) in result.stdout


def test_bare_b12lab_prints_the_help_once(cli):
    result = cli()
    assert result.exit_code == 0
    assert result.stdout.count("Usage: b12lab") == 1
    assert "interpret" in result.stdout and "--show-completion" in result.stdout
    assert result.stderr == ""
