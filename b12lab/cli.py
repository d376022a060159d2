"""The b12lab command line: options -> library calls -> renderer.

No clinical logic lives here. Library exceptions become one line on stderr and
the documented exit code; heavy modules load only inside the command that
needs them, so a one-patient call starts quickly.
"""

import json
import os
import sys
from contextlib import contextmanager
from dataclasses import replace
from enum import Enum
from typing import Annotated

import typer
from typer.core import TyperGroup

from b12lab import __version__
from b12lab.errors import B12labError
from b12lab.render import REPORT_FORMATS
from b12lab.vocab import OUTPUT_EXTENSIONS, InputFormat, Layout, OutputFormat

EXIT_OK, EXIT_INPUT, EXIT_BAD_ROWS, EXIT_URGENT, EXIT_INTERNAL = 0, 2, 3, 4, 1


def safe_line(text: str) -> str:
    """`text` with every control, bidi or line-breaking character escaped."""
    from b12lab.render.safe import escape_controls

    return escape_controls(text)


def error_line(message: str) -> None:
    """One line, whatever the input quoted in the message contains."""
    try:
        sys.stderr.write(f"b12lab: error: {safe_line(message)}\n")
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr itself is gone; the exit code still tells
        pass


class _ClosedStream:
    """Stands in for a standard stream that was closed when b12lab started.

    Reading from a closed stdin or writing to a closed stdout is an input
    error with its own message (exit 2); a closed stderr swallows messages,
    and the exit code still tells.
    """

    encoding = "utf-8"
    errors = "strict"
    closed = False

    def __init__(self, name: str, fix: str):
        self.name = name
        self.fix = fix

    def _refuse(self, *args, **kwargs):
        raise B12labError(f"standard {self.name} is closed", fix=self.fix)

    read = readline = readlines = peek = write = writelines = __iter__ = _refuse

    @property
    def buffer(self):
        return self

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        import io

        raise io.UnsupportedOperation(f"standard {self.name} is closed")


class _Discard(_ClosedStream):
    def write(self, text) -> int:
        return len(text)


def _replace_closed_streams() -> None:
    if sys.stdin is None:
        sys.stdin = _ClosedStream("input", "give a file name instead of '-'")
    if sys.stdout is None:
        sys.stdout = _ClosedStream("output", "redirect it, or write to a file with -o FILE")
    if sys.stderr is None:
        sys.stderr = _Discard("error", "")


class B12labGroup(TyperGroup):
    """Turns every error into one line on stderr and a documented exit code."""

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from typer.completion import completion_init

        from b12lab.output import Interrupted, interrupt_guard, pending_signal

        completion_init()  # typer's bash/zsh/fish/powershell completion protocol
        _replace_closed_streams()
        args = _completion_args(sys.argv[1:] if args is None else args)
        try:
            with interrupt_guard():
                result = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
            code = result if isinstance(result, int) else EXIT_OK
        except Interrupted as interruption:
            code = _interrupted(interruption)
        except B12labError as error:
            if pending_signal() is not None:  # the signal's exception surfaced as another
                code = _interrupted(Interrupted(pending_signal()))
            else:
                error_line(str(error))
                code = error.exit_code
        except BrokenPipeError:
            _silence_stdout()
            code = EXIT_OK
        except OSError as error:  # a write the output layer did not see, e.g. stdout
            error_line(
                f"cannot write output: {error.strerror or error}; free space or choose "
                "another output"
            )
            code = EXIT_INPUT
        except (typer.Abort, KeyboardInterrupt, EOFError):
            error_line("interrupted by SIGINT")
            code = 130
        except MemoryError:  # also Arrow's and DuckDB's allocation failures
            error_line(_out_of_memory_line())
            code = EXIT_INPUT
        except Exception as error:
            if pending_signal() is not None:  # e.g. an import the signal cut short
                code = _interrupted(Interrupted(pending_signal()))
            elif hasattr(error, "format_message") and hasattr(error, "exit_code"):
                code = _usage_error(error)
            else:  # a bug: still one line, never a traceback
                error_line(f"internal error ({type(error).__name__}: {error}); please report it")
                code = EXIT_INTERNAL
        else:
            if pending_signal() is not None:  # a library swallowed the signal's exception
                code = _interrupted(Interrupted(pending_signal()))
        if standalone_mode:
            sys.exit(code)
        return code


def _out_of_memory_line() -> str:
    """What to raise when memory ran out: the address-space limit when one is set."""
    try:
        import resource

        soft, unlimited = resource.getrlimit(resource.RLIMIT_AS)[0], resource.RLIM_INFINITY
    except (ImportError, OSError, ValueError):
        soft = unlimited = -1
    if soft != unlimited:
        return (
            f"out of memory within the address-space limit (ulimit -v {soft // 1024} KiB); "
            "raise it with ulimit -v, or give a smaller export"
        )
    return "out of memory; free memory or give a smaller export"


def _interrupted(interruption) -> int:
    """`interrupted by SIGINT; out.csv left as it was`, and 128 + the signal's number."""
    error_line(interruption.message())
    return interruption.exit_code


def _usage_error(error: Exception) -> int:
    """A command-line usage error (unknown option, bad choice) as one line, exit 2."""
    ctx = getattr(error, "ctx", None)
    if type(error).__name__ == "NoArgsIsHelpError" and ctx is not None:
        # Rich help is printed while the error is made; plain help is its message.
        message = error.format_message()
        if message.strip():
            sys.stdout.write(message + "\n")
        return EXIT_OK
    hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
    error_line(" ".join(error.format_message().split()) + hint)
    return EXIT_INPUT


@contextmanager
def _reader_may_leave():
    """`b12lab ... | head -1`: when the reader of stdout goes away, stop quietly (exit 0)."""
    try:
        yield
    except BrokenPipeError:
        _silence_stdout()
        raise typer.Exit(EXIT_OK) from None


def _silence_stdout() -> None:
    """After the reader of a pipe has gone, don't let the final flush fail again."""
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


app = typer.Typer(
    cls=B12labGroup,
    name="b12lab",
    help="Interpret lab panels: what vitamin B12 status implies for platelets, neutrophils "
    "and ferritin. Decision support, not a diagnosis.",
    no_args_is_help=True,
    add_completion=False,  # b12lab's own --install/--show-completion take the shell's name
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"b12lab {__version__}")
        raise typer.Exit()


SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")
CURRENT_SHELL = "current"


def _completion_shell(value: str, option: str) -> str:
    """The shell named on the command line; the one b12lab runs in when none is named."""
    if value == CURRENT_SHELL:
        import shellingham

        try:
            value = shellingham.detect_shell()[0]
        except shellingham.ShellDetectionFailure:
            value = "an unknown shell"
    shell = value.strip().lower()
    if shell not in SHELLS:
        raise B12labError(
            f"{option}: no completion for {value}",
            fix=f"name the shell: {option} bash (or {', '.join(SHELLS[1:])})",
        )
    return shell


def _completion_names(ctx) -> tuple[str, str]:
    prog_name = ctx.find_root().info_name or "b12lab"
    return prog_name, "_{}_COMPLETE".format(prog_name.replace("-", "_").upper())


def _show_completion(ctx: typer.Context, param, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer.completion import get_completion_script

    shell = _completion_shell(value, "--show-completion")
    prog_name, complete_var = _completion_names(ctx)
    typer.echo(get_completion_script(prog_name=prog_name, complete_var=complete_var, shell=shell))
    raise typer.Exit()


def _install_completion(ctx: typer.Context, param, value: str | None) -> None:
    if value is None or ctx.resilient_parsing:
        return
    from typer.completion import install

    shell = _completion_shell(value, "--install-completion")
    prog_name, complete_var = _completion_names(ctx)
    shell, path = install(shell=shell, prog_name=prog_name, complete_var=complete_var)
    typer.echo(f"{shell} completion installed in {path}; it takes effect in a new shell")
    raise typer.Exit()


def _completion_args(args: list[str]) -> list[str]:
    """`--show-completion [SHELL]` and `--install-completion [SHELL]`: a shell named after
    the option is its value; without one, the shell b12lab runs in."""
    args = list(args)
    for index, token in enumerate(args):
        if token in ("--show-completion", "--install-completion"):
            following = args[index + 1] if index + 1 < len(args) else None
            if following is not None and not following.startswith("-"):
                args[index : index + 2] = [f"{token}={following}"]
            else:
                args[index] = f"{token}={CURRENT_SHELL}"
            break
        if not token.startswith("-"):  # a command: its options are its own
            break
    return args


def _complete_shells(incomplete: str) -> list[str]:
    return [shell for shell in SHELLS if shell.startswith(incomplete.lower())]


@app.callback()
def main_options(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
    install_completion: Annotated[
        str | None,
        typer.Option(
            "--install-completion",
            metavar="[SHELL]",
            callback=_install_completion,
            is_eager=True,
            expose_value=False,
            autocompletion=_complete_shells,
            help="Install tab completion.",
        ),
    ] = None,
    show_completion: Annotated[
        str | None,
        typer.Option(
            "--show-completion",
            metavar="[SHELL]",
            callback=_show_completion,
            is_eager=True,
            expose_value=False,
            autocompletion=_complete_shells,
            help="Print the completion script.",
        ),
    ] = None,
) -> None:
    """b12lab: units normalized, reference ranges checked, reasons given."""


# The interpret formats come from the render registry (b12lab/render/__init__.py).
ReportFormat = Enum(  # type: ignore[misc]
    "ReportFormat", {name.replace("-", "_"): name for name in REPORT_FORMATS}, type=str
)


class PlainFormat(str, Enum):
    text = "text"
    json = "json"


class CatalogFormat(str, Enum):
    text = "text"
    json = "json"
    csv = "csv"


class RulesFormat(str, Enum):
    text = "text"
    json = "json"
    csv = "csv"
    markdown = "markdown"


def _complete_rule_ids(incomplete: str) -> list[tuple[str, str]]:
    from b12lab.rules import RULES

    prefix = incomplete.strip().lower()
    return [(rule_id, rule.title) for rule_id, rule in RULES.items() if rule_id.startswith(prefix)]


def _complete_guidelines(ctx: typer.Context, incomplete: str) -> list[tuple[str, str]]:
    """The profiles of the ranges file in force (--ranges when it is already typed)."""
    from b12lab.ranges import load_ranges

    try:
        ranges_in_force = load_ranges(ctx.params.get("ranges"))
    except B12labError:
        ranges_in_force = load_ranges()
    prefix = incomplete.strip().lower()
    return [
        (name, profile.title)
        for name, profile in ranges_in_force.profiles.items()
        if name.startswith(prefix)
    ]


def _complete_sexes(incomplete: str) -> list[str]:
    from b12lab.ranges import SEXES

    return [sex for sex in SEXES if sex.startswith(incomplete.strip().lower())]


class Guideline(str, Enum):
    who = "who"
    nice = "nice"


# Help panels: every command groups its options the same way, one line of help each.
INPUT, READING, CLINICAL, OUTPUT = "Input", "Units and reading", "Clinical context", "Output"
LAB_VALUES = "Lab values (unit optional)"


def _cores(most: int = 4) -> int:
    """The cores this process may run on, up to `most` (each forked decider holds its
    own copy of what the run has decided)."""
    try:
        available = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        available = os.cpu_count() or 1
    return max(1, min(available, most))


def _option(*names: str, help: str, panel: str, metavar: str | None = None, **extra):
    """An option with one line of help in its panel; a default worth knowing is in the help."""
    return typer.Option(
        *names, help=help, rich_help_panel=panel, metavar=metavar, show_default=False, **extra
    )


def _value(help_text: str) -> object:
    return _option(help=help_text, panel=LAB_VALUES, metavar="VALUE")


DateFormatOption = Annotated[
    str | None,
    _option(
        "--date-format",
        help="Slash dates: DD/MM/YYYY or MM/DD/YYYY.",
        panel=READING,
        metavar="LAYOUT",
    ),
]
RangesOption = Annotated[
    str | None,
    _option(
        "--ranges",
        help="A laboratory's ranges file (overlay).",
        panel=READING,
        metavar="FILE",
    ),
]

RulesOption = Annotated[
    str | None,
    _option(
        "--rules",
        help="A laboratory's rules file.",
        panel=CLINICAL,
        metavar="FILE",
    ),
]


def _say_stdin_is_read(what: str) -> None:
    """At a terminal, `-` waits for typed input: say so, and how to end it."""
    try:
        typed = sys.stdin.isatty()
    except (AttributeError, ValueError):
        typed = False
    if typed:
        sys.stderr.write(
            f"b12lab: reading the {what} from standard input until Ctrl-D "
            "(Ctrl-C stops; give a file name to read a file)\n"
        )
        sys.stderr.flush()


def _stdout_is_tty() -> bool:
    try:
        return sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


@app.command(
    no_args_is_help=False,
    epilog="Examples:\n\n"
    "b12lab interpret --b12 '180 pg/mL' --platelets 95 --anc 1.1 --sex female\n\n"
    "b12lab interpret examples/panel.yaml -o report.html",
)
def interpret(
    command: typer.Context,
    panel_file: Annotated[
        str | None,
        typer.Argument(
            metavar="[PANEL|-]",
            help="YAML, JSON, FHIR or HL7 v2 file; - is stdin.",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ] = None,
    b12: Annotated[str | None, _value("B12, e.g. '180 pg/mL' or 133 (pmol/L).")] = None,
    platelets: Annotated[str | None, _value("Platelets, e.g. '95 x10^9/L' or '95 K/uL'.")] = None,
    anc: Annotated[str | None, _value("Absolute neutrophil count (10^9/L).")] = None,
    ferritin: Annotated[str | None, _value("Ferritin, e.g. '450 ng/mL' (ug/L).")] = None,
    folate: Annotated[str | None, _value("Serum folate (nmol/L; ng/mL accepted).")] = None,
    mma: Annotated[str | None, _value("Methylmalonic acid (umol/L; nmol/L accepted).")] = None,
    homocysteine: Annotated[str | None, _value("Total homocysteine (umol/L).")] = None,
    holotc: Annotated[str | None, _value("Holotranscobalamin, active B12 (pmol/L).")] = None,
    hemoglobin: Annotated[str | None, _value("Hemoglobin (g/L; g/dL, mmol/L accepted).")] = None,
    mcv: Annotated[str | None, _value("Mean corpuscular volume (fL).")] = None,
    wbc: Annotated[str | None, _value("White cell count (10^9/L).")] = None,
    neutrophil_pct: Annotated[str | None, _value("% of white cells; with --wbc gives ANC.")] = None,
    crp: Annotated[str | None, _value("C-reactive protein (mg/L).")] = None,
    tsat: Annotated[str | None, _value("Transferrin saturation (%).")] = None,
    egfr: Annotated[str | None, _value("Estimated GFR (mL/min/1.73m2).")] = None,
    creatinine: Annotated[
        str | None, _value("Serum creatinine (umol/L; mg/dL); gives eGFR.")
    ] = None,
    sex: Annotated[
        str | None,
        _option(
            help="female or male (f/m accepted).",
            panel=CLINICAL,
            metavar="SEX",
            autocompletion=_complete_sexes,
        ),
    ] = None,
    age: Annotated[str | None, _option(help="Age in years.", panel=CLINICAL, metavar="YEARS")] = (
        None
    ),
    patient_id: Annotated[
        str | None, _option(help="Patient identifier.", panel=CLINICAL, metavar="ID")
    ] = None,
    date: Annotated[
        str | None,
        _option(help="Collection date; default today.", panel=CLINICAL, metavar="DATE"),
    ] = None,
    date_format: DateFormatOption = None,
    b12_therapy_start: Annotated[
        str | None,
        _option(help="Date B12 replacement started.", panel=CLINICAL, metavar="DATE"),
    ] = None,
    days_on_therapy: Annotated[
        str | None,
        _option(help="Days on B12 replacement.", panel=CLINICAL, metavar="DAYS"),
    ] = None,
    alcohol_use: Annotated[
        bool, _option("--alcohol-use", help="Heavy drinking now.", panel=CLINICAL)
    ] = False,
    alcohol_stopped: Annotated[
        bool,
        _option(
            "--alcohol-stopped",
            help="Heavy drinking stopped.",
            panel=CLINICAL,
        ),
    ] = False,
    neuro_symptoms: Annotated[
        bool,
        _option("--neuro-symptoms", help="Neurological symptoms.", panel=CLINICAL),
    ] = False,
    hypersegmented_neutrophils: Annotated[
        bool,
        _option(
            "--hypersegmented-neutrophils",
            help="Seen on the blood film.",
            panel=CLINICAL,
        ),
    ] = False,
    pregnancy_trimester: Annotated[
        str | None,
        _option(
            "--pregnancy-trimester",
            help="Pregnant, in this trimester.",
            panel=CLINICAL,
            metavar="1|2|3",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        _option("--as-of", help="Evaluate as on DATE.", panel=CLINICAL, metavar="DATE"),
    ] = None,
    ranges: RangesOption = None,
    rules_file: RulesOption = None,
    guideline: Annotated[
        str | None,
        _option(
            help="who (default) or nice cut-offs.",
            panel=CLINICAL,
            metavar="PROFILE",
            autocompletion=_complete_guidelines,
        ),
    ] = None,
    output_format: Annotated[
        ReportFormat | None,
        _option(
            "--format",
            "-f",
            help=", ".join(REPORT_FORMATS) + ".",
            panel=OUTPUT,
            metavar="FORMAT",
        ),
    ] = None,
    output: Annotated[
        str | None,
        _option(
            "--output",
            "-o",
            help="Write here; its extension sets the format.",
            panel=OUTPUT,
            metavar="FILE",
        ),
    ] = None,
    full: Annotated[
        bool,
        _option("--full", help="Text: every detail, next step and cut-off.", panel=OUTPUT),
    ] = False,
    input_format: Annotated[
        InputFormat,
        _option(
            "--input-format",
            help="auto/yaml/json/fhir/fhir-ndjson/hl7v2",
            panel=READING,
            metavar="FORMAT",
        ),
    ] = InputFormat.AUTO,
    code_map: Annotated[
        list[str] | None,
        _option(
            "--map",
            help="Read a FHIR/HL7 test CODE as KEY.",
            panel=READING,
            metavar="CODE=KEY",
        ),
    ] = None,
) -> None:
    """Interpret one patient's panel from flags and/or a panel file.

    The report is text on a terminal, JSON in a pipe, or what -o's extension or
    --format names.
    """
    from b12lab.api import interpret_record
    from b12lab.model import Context
    from b12lab.ranges import load_ranges
    from b12lab.reading.fields import parse_age, parse_date_format, parse_days, parse_sex
    from b12lab.reading.fields import parse_date as parse_any_date
    from b12lab.reading.sources.panel_file import PatientRecord, RawPanel
    from b12lab.reading.trimester import parse_trimester
    from b12lab.reading.values import is_missing

    if output not in (None, "-"):
        from b12lab.output import check_targets

        check_targets([("panel file", panel_file), ("ranges file", ranges)], [("report", output)])
    if alcohol_use and alcohol_stopped:
        raise B12labError(
            "--alcohol-use and --alcohol-stopped were both given",
            fix="give --alcohol-use for heavy drinking now or --alcohol-stopped for heavy "
            "drinking recently stopped, not both",
        )
    ranges_in_force = load_ranges(ranges)
    if rules_file is not None:
        from b12lab.rules.catalogue import in_force_for_command, load_lab_rules

        lab_rules = load_lab_rules(rules_file, frozenset(ranges_in_force.sources))
        in_force_for_command(lab_rules, command)
    date_order = parse_date_format(date_format)

    def parse_date(value, field):
        return parse_any_date(value, field, date_order)

    flag_values = {
        "b12": b12,
        "platelets": platelets,
        "anc": anc,
        "ferritin": ferritin,
        "folate": folate,
        "mma": mma,
        "homocysteine": homocysteine,
        "holotc": holotc,
        "hemoglobin": hemoglobin,
        "mcv": mcv,
        "wbc": wbc,
        "neutrophil_pct": neutrophil_pct,
        "crp": crp,
        "tsat": tsat,
        "egfr": egfr,
        "creatinine": creatinine,
    }
    given = {key: value for key, value in flag_values.items() if value is not None}
    for key, value in given.items():
        if is_missing(value):
            raise B12labError(
                f"--{key.replace('_', '-')} '{value}' is not a number",
                fix="give the result as printed (e.g. '180 pg/mL'), or leave the flag out",
            )
    if panel_file is None and not given:
        raise B12labError(
            "no lab values given",
            fix="pass a panel file or flags such as --b12 '180 pg/mL' "
            "(see 'b12lab interpret --help')",
        )
    record, messages = PatientRecord(), None
    if panel_file == "-":
        _say_stdin_is_read("panel")
    if panel_file:
        record, messages = _read_patient_file(
            panel_file, input_format.value, ranges_in_force, date_order
        )
    if messages is not None:
        report = _interpret_messages(
            messages,
            ranges_in_force,
            given,
            date=date,
            patient_id=patient_id,
            sex=sex,
            age=age,
            code_map=code_map,
            context=replace(
                Context(),
                b12_therapy_start=parse_date(b12_therapy_start, "--b12-therapy-start"),
                days_on_therapy=parse_days(days_on_therapy, "--days-on-therapy"),
                alcohol_use=alcohol_use,
                alcohol_stopped=alcohol_stopped,
                neuro_symptoms=neuro_symptoms,
                hypersegmented_neutrophils=hypersegmented_neutrophils,
                pregnancy_trimester=parse_trimester(pregnancy_trimester, "--pregnancy-trimester"),
            ),
            guideline=guideline,
            as_of=as_of,
            date_order=date_order,
        )
        _write_report(report, output_format, ranges_in_force, output=output, full=full)
        return
    if not record.panels:
        record.panels.append(RawPanel(None))
    latest = max(record.panels, key=lambda p: (p.date is not None, p.date))
    for analyte, value in given.items():
        latest.override(analyte, value, f"--{analyte.replace('_', '-')}")
    if date is not None:
        latest.date = parse_date(date, "--date")
    record.patient_id = patient_id or record.patient_id
    record.sex = parse_sex(sex, "--sex") or record.sex
    record.age = parse_age(age, "--age") if age is not None else record.age
    context_changes = {
        "b12_therapy_start": parse_date(b12_therapy_start, "--b12-therapy-start"),
        "days_on_therapy": parse_days(days_on_therapy, "--days-on-therapy"),
        "alcohol_use": True if alcohol_use else False if alcohol_stopped else None,
        "alcohol_stopped": True if alcohol_stopped else False if alcohol_use else None,
        "neuro_symptoms": neuro_symptoms or None,
        "hypersegmented_neutrophils": hypersegmented_neutrophils or None,
        "pregnancy_trimester": parse_trimester(pregnancy_trimester, "--pregnancy-trimester"),
    }
    record.context = replace(
        record.context, **{k: v for k, v in context_changes.items() if v is not None}
    )
    report = interpret_record(
        record,
        guideline=guideline,
        ranges=ranges_in_force,
        today=parse_date(as_of, "--as-of") if as_of is not None else None,
    )
    _write_report(report, output_format, ranges_in_force, output=output, full=full)


def _read_patient_file(path: str, input_format: str, ranges_in_force, date_order=None):
    """(panel-file record, None) for YAML or JSON; (None, (data, label, kind)) for FHIR or HL7."""
    from b12lab.reading.sources.detect import DETECT_BYTES, detect_input
    from b12lab.reading.sources.panel_file import (
        load_panel_document,
        read_text,
        record_from_document,
    )

    if input_format == "csv":
        raise B12labError(
            "--input-format csv: a CSV export is read by b12lab batch",
            fix=f"use b12lab batch {path}",
        )
    if input_format in ("parquet", "arrow"):
        raise B12labError(
            f"--input-format {input_format}: a Parquet or Arrow export is read by b12lab batch",
            fix=f"use b12lab batch {path}",
        )
    text = read_text(path)  # stdin can be read only once
    label = "standard input" if path == "-" else path
    data = text.encode("utf-8")
    kind = detect_input(data[:DETECT_BYTES], label, input_format)
    if kind.is_table:
        raise B12labError(
            f"{label} is a Parquet or Arrow export, read by b12lab batch",
            fix=f"use b12lab batch {path}",
        )
    if kind == "csv":
        raise B12labError(
            f"{label} is a CSV or tab-separated export (a header row of columns), "
            "not a panel file; b12lab batch reads exports",
            fix=f"use b12lab batch {path}",
        )
    if kind.is_message:
        return None, (data, label, kind)
    document = load_panel_document(text, label)
    return record_from_document(document, ranges_in_force, label, date_order), None


def _interpret_messages(
    messages, ranges_in_force, given, *, code_map, as_of, date_order=None, **rest
):
    from b12lab.messages import interpret_messages, read_observations
    from b12lab.reading.columns import parse_map
    from b12lab.reading.fields import parse_age, parse_date, parse_sex

    data, label, kind = messages
    return interpret_messages(
        read_observations(data, kind, label),
        ranges_in_force,
        label=label,
        overrides=given,
        date=parse_date(rest["date"], "--date", date_order) if rest["date"] is not None else None,
        patient_id=rest["patient_id"],
        sex=parse_sex(rest["sex"], "--sex"),
        age=parse_age(rest["age"], "--age") if rest["age"] is not None else None,
        context=rest["context"],
        mapping=parse_map(code_map or [], ranges_in_force),
        guideline=rest["guideline"],
        today=parse_date(as_of, "--as-of") if as_of is not None else None,
    )


REPORT_EXTENSIONS = {
    ".html": "html",
    ".htm": "html",
    ".md": "markdown",
    ".markdown": "markdown",
    ".json": "json",
    ".txt": "text",
}
BATCH_EXTENSIONS = {suffix: found.value for suffix, found in OUTPUT_EXTENSIONS.items()}


def format_for_file(path: str, extensions: dict[str, str], default: str) -> str:
    """The format an output file's extension names (-o report.html: html); for another
    extension the default, said on stderr."""
    import os
    from pathlib import PurePath

    suffix = PurePath(path).suffix.lower()
    if suffix in extensions:
        return extensions[suffix]
    if os.path.exists(path) and not os.path.isfile(path):  # /dev/stdout, a FIFO: no name
        return default
    known = ", ".join(sorted(extensions))
    what = f"extension '{suffix}'" if suffix else "no extension"
    sys.stderr.write(
        f"b12lab: note: {safe_line(path)} has {safe_line(what)}: writing {default} "
        f"(the format follows {known}; --format chooses another)\n"
    )
    return default


def _plan_format(output: str, given: OutputFormat | None) -> OutputFormat:
    """The format of a plan written to `output`: --format, else json for a `.json` name and
    text for any other; a name that says another format (plan.csv) is refused."""
    from b12lab.vocab import contradicted_by_name, renamed_for

    chosen = given
    if chosen is None:
        named = contradicted_by_name(output, OutputFormat.TEXT)
        chosen = OutputFormat.JSON if named is OutputFormat.JSON else OutputFormat.TEXT
    named = contradicted_by_name(output, chosen)
    if named is not None and chosen in (OutputFormat.TEXT, OutputFormat.JSON):
        raise B12labError(
            f"-o {output} names {named} output, but --plan writes {chosen}",
            fix=f"name the output {renamed_for(output, chosen)}",
        )
    return chosen


def _note_other_name(output: str, chosen: str) -> None:
    """--format wins over -o's extension; a name that says another format is said
    (report.html holding json). A .txt name holds any text, a .json name any JSON."""
    from pathlib import PurePath

    named = REPORT_EXTENSIONS.get(PurePath(output).suffix.lower())
    if named in (None, chosen, "text") or (named == "json" and chosen in ("fhir", "cds-hooks")):
        return
    sys.stderr.write(
        f"b12lab: note: -o {safe_line(output)} names {named} output; "
        f"it holds {chosen} (as --format says)\n"
    )


def _write_report(report, output_format, ranges_in_force, *, output=None, full=False) -> None:
    """Render in the chosen format, then write it whole (a file only once it is complete)."""
    import io

    from b12lab.output import AtomicOutput
    from b12lab.render import RenderOptions, render_report

    to_stdout = output in (None, "-")
    if output_format is not None:
        chosen = output_format.value
        if not to_stdout:
            _note_other_name(output, chosen)
    elif to_stdout:
        chosen = "text" if _stdout_is_tty() else "json"
    else:
        chosen = format_for_file(output, REPORT_EXTENSIONS, "json")
    options = RenderOptions(
        ranges=ranges_in_force, full=full, stream=sys.stdout if to_stdout else io.StringIO()
    )
    document = render_report(chosen, report, options)
    with _reader_may_leave(), AtomicOutput(output, "report") as stream:
        stream.write(document)


class Decimal(str, Enum):
    point = "."
    comma = ","


class FailOn(str, Enum):
    advisory = "advisory"
    urgent = "urgent"


@app.command(
    epilog="Examples:\n\n"
    "b12lab batch examples/wide_us.csv -o results.csv --errors rejected.csv\n\n"
    "b12lab batch examples/long_lis.csv --plan",
)
def batch(
    command: typer.Context,
    export: Annotated[
        str,
        typer.Argument(
            metavar="EXPORT|-",
            help="CSV, Parquet, Arrow, FHIR or HL7 v2; - is stdin.",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ],
    output: Annotated[
        str | None,
        _option(
            "--output",
            "-o",
            help="Write here; its extension sets the format.",
            panel=OUTPUT,
            metavar="OUT",
        ),
    ] = None,
    output_format: Annotated[
        OutputFormat | None,
        _option(
            "--format",
            "-f",
            help="csv, ndjson, json, fhir-ndjson, parquet, text.",
            panel=OUTPUT,
            metavar="FORMAT",
        ),
    ] = None,
    layout: Annotated[
        Layout,
        _option(help="wide, long, or auto (detected).", panel=READING, metavar="LAYOUT"),
    ] = Layout.AUTO,
    column_map: Annotated[
        list[str] | None,
        _option(
            "--map",
            help="Read COLUMN as KEY (analyte or field).",
            panel=READING,
            metavar="COL=KEY",
        ),
    ] = None,
    ranges: RangesOption = None,
    rules_file: RulesOption = None,
    guideline: Annotated[
        Guideline | None,
        _option(help="who (default) or nice cut-offs.", panel=CLINICAL, metavar="PROFILE"),
    ] = None,
    errors: Annotated[
        str | None,
        _option(
            "--errors", help="Also write every rejected cell here.", panel=OUTPUT, metavar="FILE"
        ),
    ] = None,
    fail_on: Annotated[
        FailOn | None,
        _option(
            "--fail-on",
            help="Exit 4 on a finding of LEVEL (advisory/urgent).",
            panel=OUTPUT,
            metavar="LEVEL",
        ),
    ] = None,
    timeline: Annotated[
        bool,
        _option("--timeline", help="One report per patient over all their panels.", panel=CLINICAL),
    ] = False,
    progress: Annotated[
        bool,
        _option(
            "--progress/--no-progress", help="Progress on stderr at a terminal.", panel="Options"
        ),
    ] = True,
    jobs: Annotated[
        int | None,
        _option(
            "--jobs",
            "-j",
            help="Processes (default: cores, at most 4).",
            panel="Options",
            metavar="N",
        ),
    ] = None,
    unit: Annotated[
        list[str] | None,
        _option(
            "--unit",
            help="Unit of a column whose values carry none.",
            panel=READING,
            metavar="KEY=UNIT",
        ),
    ] = None,
    strict: Annotated[
        bool,
        _option("--strict", help="Refuse every assumption as a row error.", panel=READING),
    ] = False,
    date_format: DateFormatOption = None,
    decimal: Annotated[
        Decimal | None,
        _option(
            "--decimal",
            help="The export's decimal mark, '.' or ','.",
            panel=READING,
            metavar="MARK",
        ),
    ] = None,
    as_of: Annotated[
        str | None,
        _option("--as-of", help="Evaluate as on DATE.", panel=CLINICAL, metavar="DATE"),
    ] = None,
    input_format: Annotated[
        InputFormat,
        _option(
            "--input-format",
            help="auto/csv/parquet/arrow/fhir/fhir-ndjson/hl7v2",
            panel=READING,
            metavar="FORMAT",
        ),
    ] = InputFormat.AUTO,
    plan: Annotated[
        bool,
        _option("--plan", help="Only show how each column will be read.", panel=READING),
    ] = False,
    keep: Annotated[
        list[str] | None,
        _option(
            "--keep",
            help="Copy these export columns into every record.",
            panel=OUTPUT,
            metavar="COL,...",
        ),
    ] = None,
) -> int:
    """Interpret a whole export: one record per panel, in input order.

    A bad cell gets its own record (and a row in --errors), never dropped; the
    run goes on and exits 3.
    """
    from b12lab.batch.options import BatchOptions
    from b12lab.batch.run import run_batch
    from b12lab.output import AtomicOutput, check_targets
    from b12lab.ranges import load_ranges
    from b12lab.reading.columns import parse_map, parse_units
    from b12lab.reading.fields import parse_date, parse_date_format
    from b12lab.reading.policy import AUTO, ReadPolicy

    if export == "-":
        _say_stdin_is_read("export")
    if jobs is not None and jobs < 1:
        raise B12labError(f"--jobs {jobs}: no process would decide", fix="give --jobs 1 or more")
    check_targets(
        [("input export", export), ("ranges file", ranges), ("rules file", rules_file)],
        [("output", output)] + ([("errors file", errors)] if errors else []),
    )
    ranges_in_force = load_ranges(ranges)
    lab_rules = None
    if rules_file is not None:
        from b12lab.rules.catalogue import in_force_for_command, load_lab_rules

        lab_rules = load_lab_rules(rules_file, frozenset(ranges_in_force.sources))
        in_force_for_command(lab_rules, command)  # laboratory messages are judged by it too
    today = parse_date(as_of, "--as-of") if as_of is not None else None
    if plan and output not in (None, "-"):
        output_format = _plan_format(output, output_format)
    elif output_format is None and plan:
        output_format = OutputFormat.TEXT
    elif output_format is None:
        output_format = OutputFormat.CSV
        if output not in (None, "-"):
            output_format = OutputFormat(format_for_file(output, BATCH_EXTENSIONS, "csv"))
    if plan and output_format not in (OutputFormat.TEXT, OutputFormat.JSON):
        raise B12labError(
            f"--plan prints text or json, not {output_format.value}",
            fix="use --plan --format text or --plan --format json",
        )
    options = BatchOptions(
        # --plan describes the run that would write CSV; its own format is how it prints
        output=None if plan else output,
        output_format=OutputFormat.CSV if plan else output_format,
        errors_path=errors,
        progress=progress,
        input_format=input_format,
        layout=layout,
        mapping=parse_map(column_map or [], ranges_in_force),
        guideline=guideline.value if guideline else None,
        policy=ReadPolicy(
            decimal=decimal.value if decimal else AUTO,
            strict=strict,
            units=parse_units(unit or []),
            date_order=parse_date_format(date_format),
        ),
        today=today,
        timeline=timeline,
        keep=keep or [],
        rules=lab_rules,
        workers=jobs or _cores(),
    )
    if plan:
        from b12lab.batch.plan import plan_export
        from b12lab.render.plan import render_plan

        export_plan = plan_export(export, ranges_in_force, options)
        text = render_plan(export_plan, "json" if output_format is OutputFormat.JSON else "text")
        with _reader_may_leave(), AtomicOutput(output, "output") as out:
            out.write(text)
        return EXIT_OK
    with _reader_may_leave():
        summary = run_batch(export, ranges_in_force, options)
    for note in summary.notes:
        sys.stderr.write(f"b12lab: note: {safe_line(note)}\n")
    sys.stderr.write(f"b12lab: {safe_line(summary.line())}\n")
    if summary.panels_with_errors:
        return EXIT_BAD_ROWS
    if fail_on is FailOn.urgent and summary.urgent_panels:
        return EXIT_URGENT
    if fail_on is FailOn.advisory and summary.advisory_panels:
        return EXIT_URGENT
    return EXIT_OK


@app.command(
    epilog="Examples:\n\n"
    "b12lab rules fer-may-mask-iron-deficiency\n\n"
    "b12lab rules check lab_rules.yaml"
)
def rules(
    rule_id: Annotated[
        str | None,
        typer.Argument(
            metavar="[RULE_ID]",
            help="A finding id, or check.",
            autocompletion=_complete_rule_ids,
        ),
    ] = None,
    rules_file: Annotated[
        str | None,
        typer.Argument(
            metavar="[FILE]",
            help="With check: a laboratory's rules file.",
        ),
    ] = None,
    output_format: Annotated[
        RulesFormat,
        _option(
            "--format",
            "-f",
            help="text (default), json, csv or markdown.",
            panel=OUTPUT,
            metavar="FORMAT",
        ),
    ] = RulesFormat.text,
) -> None:
    """List the rules, or explain one with its trigger and sources; check FILE replays
    every cornerstone case with a laboratory's rules file in force (exit 4 when a
    conclusion changed)."""
    import difflib

    from b12lab.ranges import load_ranges
    from b12lab.render import catalog
    from b12lab.rules import RULES

    ranges_in_force = load_ranges()
    if rule_id == "check":
        _check_rules(rules_file, ranges_in_force)
        return
    if rules_file is not None:
        raise B12labError(
            f"unexpected argument '{rules_file}'", fix=f"run b12lab rules check {rules_file}"
        )
    if rule_id is None:
        if output_format is RulesFormat.json:
            document = [catalog.rule_dict(r, ranges_in_force) for r in catalog.ordered_rules()]
            sys.stdout.write(json.dumps(document, indent=2) + "\n")
        elif output_format is RulesFormat.csv:
            sys.stdout.write(catalog.rules_csv(ranges_in_force, catalog.ordered_rules()))
        elif output_format is RulesFormat.markdown:
            sys.stdout.write(catalog.rules_markdown(catalog.ordered_rules()))
        else:
            sys.stdout.write(catalog.rules_text(_terminal_width()))
        return
    rule = RULES.get(rule_id.strip().lower())
    if rule is None:
        close = difflib.get_close_matches(rule_id, list(RULES), n=3)
        raise B12labError(
            f"no rule '{rule_id}'",
            fix=(
                f"did you mean {', '.join(close)}?" if close else "run 'b12lab rules' for the list"
            ),
        )
    if output_format is RulesFormat.json:
        sys.stdout.write(json.dumps(catalog.rule_dict(rule, ranges_in_force), indent=2) + "\n")
    elif output_format is RulesFormat.markdown:
        sys.stdout.write(catalog.rules_markdown([rule]))
    elif output_format is RulesFormat.csv:
        sys.stdout.write(catalog.rules_csv(ranges_in_force, [rule]))
    else:
        sys.stdout.write(catalog.rule_detail(rule, ranges_in_force, _screen_width()))


def _check_rules(rules_file: str | None, ranges_in_force) -> None:
    from b12lab.api import replay_cases
    from b12lab.rules.catalogue import load_lab_rules, shipped_cases

    if rules_file is None:
        raise B12labError("b12lab rules check needs a rules file", fix="b12lab rules check FILE")
    catalogue = load_lab_rules(rules_file, frozenset(ranges_in_force.sources))
    cases = (*shipped_cases(), *catalogue.cases)
    changed = replay_cases(catalogue, cases)
    for line in changed:
        sys.stdout.write(safe_line(line) + "\n")
    sys.stderr.write(
        f"b12lab: {len(cases)} cornerstone cases replayed ({len(catalogue.cases)} from "
        f"{safe_line(rules_file)}); {len(changed)} changed their conclusion\n"
    )
    if changed:
        raise typer.Exit(EXIT_URGENT)


@app.command("ranges", epilog="Example: b12lab ranges --ranges examples/lab_overlay.yaml")
def ranges_command(
    ranges: RangesOption = None,
    output_format: Annotated[
        CatalogFormat,
        _option(
            "--format", "-f", help="text (default), json or csv.", panel=OUTPUT, metavar="FORMAT"
        ),
    ] = CatalogFormat.text,
) -> None:
    """Show the reference ranges; --ranges checks a laboratory's file."""
    from b12lab.ranges import load_ranges
    from b12lab.render import catalog

    ranges_in_force = load_ranges(ranges)
    if output_format is CatalogFormat.json:
        sys.stdout.write(json.dumps(catalog.ranges_dict(ranges_in_force), indent=2) + "\n")
    elif output_format is CatalogFormat.csv:
        sys.stdout.write(catalog.ranges_csv(ranges_in_force))
    else:
        sys.stdout.write(catalog.ranges_text(ranges_in_force, _terminal_width()))
    if ranges:
        sys.stderr.write(f"b12lab: {safe_line(ranges)} is valid and overlays the defaults\n")


@app.command(
    epilog="Examples:\n\n"
    "b12lab convert 300 pg/mL --to pmol/L\n\n"
    "b12lab convert '45 ng/dL' --to ug/L --analyte ferritin"
)
def convert(
    value: Annotated[
        str,
        typer.Argument(
            help="A value, with its unit: 300 or '300 pg/mL'.",
            rich_help_panel=INPUT,
            show_default=False,
        ),
    ],
    unit: Annotated[
        str | None,
        typer.Argument(
            help="The value's unit, if not in VALUE.", rich_help_panel=INPUT, show_default=False
        ),
    ] = None,
    to: Annotated[
        str | None,
        _option("--to", help="Target unit (default: canonical).", panel=READING, metavar="UNIT"),
    ] = None,
    analyte: Annotated[
        str | None,
        _option(help="Analyte key, when the unit fits several.", panel=READING, metavar="KEY"),
    ] = None,
    ranges: RangesOption = None,
    output_format: Annotated[
        PlainFormat,
        _option("--format", "-f", help="text (default) or json.", panel=OUTPUT, metavar="FORMAT"),
    ] = PlainFormat.text,
) -> None:
    """Convert a value between units of one analyte.

    The value is read as interpret reads it; the analyte, when not given, is the
    one the units name.
    """
    from b12lab.convert import convert_value
    from b12lab.ranges import load_ranges

    result = convert_value(load_ranges(ranges), value, unit, to, analyte)
    text = result.pop("text")
    note = result.pop("note")
    if note:
        sys.stderr.write(f"b12lab: note: {note} (interpret refuses it)\n")
    if output_format is PlainFormat.json:
        sys.stdout.write(json.dumps(result) + "\n")
    else:
        sys.stdout.write(f"{text}\n")


def _screen_width() -> int:
    """The terminal's width (COLUMNS when set; 80 when there is none)."""
    import shutil

    return max(40, shutil.get_terminal_size((80, 24)).columns)


def _terminal_width() -> int | None:
    """The width to wrap a table to: the terminal's, when stdout is one; else none, so
    that a program reading it gets one line per row."""
    return _screen_width() if _stdout_is_tty() else None


def main() -> None:
    """Console-script entry point."""
    if sys.argv[1:2] == ["batch"] and "pandas" not in sys.modules:
        # Where pandas is installed, pyarrow imports it (about 50 MB and a quarter of a
        # second) only to ask whether a Python list is a pandas object. `b12lab batch`
        # never gives it one, so in this process pyarrow finds no pandas.
        sys.meta_path.insert(0, _WithoutPandas())
    app()


class _WithoutPandas:
    """An import finder that says pandas is not installed (`main`, for `batch`)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name == "pandas" or name.startswith("pandas."):
            raise ModuleNotFoundError("b12lab batch runs without pandas", name=name)
        return None
