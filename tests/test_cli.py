"""The `jazbat` command line: summary in every format, help, and clear errors."""
import json
import subprocess
import sys

import pytest

from jazbat_jax.cli import build_parser, main
from jazbat_jax.machine import HUGEPAGE_TUNABLE, hugepage_malloc_env, transparent_hugepage_mode
from tiny import EXPECTED

PAPER_MODEL = next(e for e in EXPECTED["jazbat_net"] if (e["input"], e["K"], e["C"]) == ("1d", 6, 6))


def test_summary_json_has_the_exact_numbers(capsys):
    assert main(["summary", "--input", "1d", "--no-xla", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    ours = report["jazbat_net"]
    assert (ours["trainable_params"], ours["total_params"], ours["macs"]) == (
        PAPER_MODEL["trainable"], PAPER_MODEL["total"], PAPER_MODEL["macs"])
    assert ours["groups"]["bigru"]["trainable"] == 6_720
    assert ours["groups"]["modules"]["trainable"] == 20_952
    assert report["sota_surrogate"]["total_params"] == EXPECTED["sota_surrogate"][0]["total"]
    assert "surrogate" in report["sota_surrogate"]["label"]
    assert report["published"]["sota"]["macs"] == 157.88e6


def test_summary_markdown_flags_table_v(capsys, tmp_path):
    out_file = tmp_path / "summary.md"
    assert main(["summary", "--input", "6d", "--no-xla", "--format", "markdown", "-o", str(out_file)]) == 0
    text = capsys.readouterr().out
    assert "| module_1/b1_1x5" in text and "7,200,804" in text
    assert "29.13K" in text and "input width of 5 (29,128)" in text
    assert out_file.read_text().strip() == text.strip()


@pytest.mark.slow  # compiles the model for the XLA cross-check
def test_summary_text_with_xla_crosscheck(capsys):
    assert main(["summary", "-K", "18", "-C", "18", "--xla"]) == 0
    text = capsys.readouterr().out
    assert "7,151,940" in text and "29,312" in text
    assert "match" in text and "MISMATCH" not in text
    assert "S-754 surrogate (ours)" in text


def test_summary_skips_the_xla_crosscheck_unless_asked(capsys):
    assert main(["summary", "--format", "json"]) == 0
    default = json.loads(capsys.readouterr().out)
    assert "xla" not in default
    assert main(["summary", "--no-xla", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == default


def test_bad_arguments_give_clear_errors(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["summary", "--input", "2d"])
    err = capsys.readouterr().err
    assert "invalid choice: '2d'" in err and err.count("\n") == 1 and "usage:" not in err
    assert main(["summary", "-C", "1", "--no-xla"]) == 1
    assert capsys.readouterr().err == "jazbat summary: error: --classes must be at least 2\n"


@pytest.mark.parametrize("argv, message", [
    (["evaluate", "no/such/run"], "jazbat evaluate: error: no checkpoint at no/such/run"),
    (["predict", "missing.csv", "--checkpoint", "no/such/run"], "jazbat predict: error: no checkpoint at no/such/run"),
    (["experiments", "--config", "no/such/grid.toml", "--report-only"], "jazbat experiments: error: config file"),
    (["finetune", "--no-pretrain", "--sample", "--data", "seecs", "--run-dir", "x"], "jazbat finetune: error: --sample"),
])
def test_user_errors_are_one_line_without_traceback(argv, message, tmp_path, monkeypatch):
    """As a user runs it: a subprocess, its whole stderr, its exit status."""
    monkeypatch.chdir(tmp_path)
    env = {k: v for k, v in __import__("os").environ.items() if k != "JAZBAT_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "jazbat_jax.cli", *argv], capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.startswith(message), proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr, proc.stderr


def test_debug_shows_the_traceback(capsys):
    with pytest.raises(ValueError, match="at least 2"):
        main(["--debug", "summary", "-C", "1", "--no-xla"])


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "jazbat_jax.cli", "summary", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--reduce-filters" in out.stdout


# Huge-page malloc (machine.py): when the `jazbat` command restarts itself, and that it does.


@pytest.mark.parametrize(
    "environ, thp, libc, expected",
    [
        ({}, "madvise", ("glibc", "2.36"), HUGEPAGE_TUNABLE),
        ({"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}, "madvise", ("glibc", "2.35"),
         "glibc.malloc.arena_max=2:" + HUGEPAGE_TUNABLE),  # the user's tunables are kept
        ({"GLIBC_TUNABLES": "glibc.malloc.hugetlb=0"}, "madvise", ("glibc", "2.36"), None),  # the user decided
        ({"JAZBAT_HUGEPAGE_MALLOC": "0"}, "madvise", ("glibc", "2.36"), None),  # opted out
        ({}, "always", ("glibc", "2.36"), None),  # every mapping gets huge pages already
        ({}, "never", ("glibc", "2.36"), None),
        ({}, None, ("glibc", "2.36"), None),  # not Linux
        ({}, "madvise", ("glibc", "2.31"), None),  # no hugetlb tunable before glibc 2.35
        ({}, "madvise", ("", ""), None),  # musl, macOS
    ],
)
def test_hugepage_malloc_env(environ, thp, libc, expected):
    env = hugepage_malloc_env(environ, thp, libc)
    assert (env and env["GLIBC_TUNABLES"]) == expected
    if env:
        assert {k: v for k, v in env.items() if k != "GLIBC_TUNABLES"} == {
            k: v for k, v in environ.items() if k != "GLIBC_TUNABLES"}


def _machine_report(extra_env):
    import os
    import platform

    env = {k: v for k, v in os.environ.items() if k not in ("GLIBC_TUNABLES", "JAZBAT_HUGEPAGE_MALLOC")}
    env.update(extra_env)
    restart = hugepage_malloc_env(env, transparent_hugepage_mode(), platform.libc_ver()) is not None
    code = "import sys; sys.argv = ['jazbat', 'machine']; from jazbat_jax.cli import main; sys.exit(main())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return restart, json.loads(out.stdout)


def test_training_commands_restart_with_hugepage_malloc_where_it_helps():
    restart, report = _machine_report({})
    # Only the commands that train restart themselves; `machine` says what they would get.
    assert report["malloc_hugepages"] is False
    assert report["training_malloc_hugepages"] is restart  # on this machine kind (THP madvise, glibc 2.36): True
    assert report["transparent_hugepages"] == transparent_hugepage_mode()
    _, opted_out = _machine_report({"JAZBAT_HUGEPAGE_MALLOC": "0"})
    assert opted_out["training_malloc_hugepages"] is False


# `jazbat --help` and every `jazbat CMD --help` build the whole parser; none may import a heavy
# library (each costs a fraction of a second to seconds of CPU on every call).
HEAVY_LIBRARIES = ("scipy", "jax", "tensorflow", "sklearn")
# One fresh process runs every help in turn and lists the heavy libraries loaded after each: a library that
# some command's help imports is listed first after that command.
_HELP_PROBE = """
import contextlib, io, json, runpy, sys
for command in json.loads(sys.argv[1]):
    sys.argv = ["jazbat", *command, "--help"]
    out, code = io.StringIO(), None
    with contextlib.redirect_stdout(out):
        try:
            runpy.run_module("jazbat_jax.cli", run_name="__main__")
        except SystemExit as e:
            code = e.code
    imported = sorted({m.split(".")[0] for m in sys.modules} & set(%r))
    print(json.dumps({"command": command, "code": code, "usage": "usage:" in out.getvalue(), "imported": imported}))
""" % (HEAVY_LIBRARIES,)


def _help_commands() -> list[list[str]]:
    """Every command path of the real parser, nested ones (`data info`) included."""
    def walk(parser, prefix):
        out = [prefix]
        for action in parser._actions:
            if isinstance(action, __import__("argparse")._SubParsersAction):
                for name, sub in action.choices.items():
                    out += walk(sub, [*prefix, name])
        return out

    return walk(build_parser(), [])


def test_help_imports_no_heavy_library():
    commands = _help_commands()
    assert ["predict"] in commands and ["data", "info"] in commands and ["export"] in commands
    proc = subprocess.run([sys.executable, "-c", _HELP_PROBE, json.dumps(commands)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    results = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [r["command"] for r in results] == commands
    for r in results:
        assert r["code"] == 0 and r["usage"] and r["imported"] == [], (r, proc.stderr)


def test_the_stderr_filter_passes_a_progress_bar_on_while_it_runs():
    """tqdm redraws with "\\r" and no newline: through the filter of native noise, each redraw must show when it
    is drawn, not when the next newline (or the end of the command) comes."""
    import os
    import time

    code = ("import os, sys, time\n"
            "from jazbat_jax.cli import filter_native_stderr\n"
            "filter_native_stderr()\n"
            "print('ready', flush=True)\n"
            "os.write(2, b'grid 1/2\\r')\n"
            "time.sleep(5)\n"
            "os.write(2, b'grid 2/2\\nAll log messages before absl::InitializeLog() is called\\ndone\\n')\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout.readline() == b"ready\n"
    t0 = time.monotonic()
    first = os.read(proc.stderr.fileno(), 100)
    waited = time.monotonic() - t0
    rest = proc.stderr.read()
    proc.wait(timeout=30)
    assert first == b"grid 1/2\r" and waited < 4, (first, waited)
    assert rest == b"grid 2/2\ndone\n"  # the native noise line is still dropped


def test_ctrl_c_says_that_rerunning_resumes(tmp_path, xla_cache_env):
    """Ctrl-C (SIGINT) during a real `jazbat pretrain`: exit 130 and one line that says rerunning resumes; the
    same command then does resume."""
    import signal

    argv = [sys.executable, "-m", "jazbat_jax.cli", "pretrain", "--sample", "--window", "64", "--step", "64",
            "--max-windows", "200", "--epochs", "3", "--batch-size", "32", "--run-dir", str(tmp_path / "run"),
            "--no-progress", "--no-plots"]
    env = {k: v for k, v in xla_cache_env.items() if k != "JAZBAT_DEBUG"}  # the rerun compiles the same steps
    # A process started in the background by a shell may inherit SIGINT ignored; a terminal's Ctrl-C does not.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    for line in proc.stdout:
        if line.startswith("epoch   1/3"):
            proc.send_signal(signal.SIGINT)
            break
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err == "jazbat pretrain: interrupted; rerun the same command to resume after the last completed epoch\n"
    again = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0 and "resumed from" in again.stdout, again.stderr
