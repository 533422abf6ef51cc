"""Every command's ``--help`` reads as help for users: no docstring markup, no module names."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from rollrec.cli import build_parser, main

COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)  # argparse has no public list


def _help(capsys, argv) -> str:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    return capsys.readouterr().out


def _clean(text: str) -> None:
    assert "``" not in text and "`" not in text, text
    assert not re.search(r"rollrec\.[a-z_]+", text), text  # an internal module name
    assert ":class:" not in text and ":func:" not in text, text


def test_top_level_help(capsys):
    text = _help(capsys, ["--help"])
    _clean(text)
    assert "replay" in text and "video" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_subcommand_help(capsys, command):
    text = _help(capsys, [command, "--help"])
    _clean(text)
    assert text.startswith(f"usage: rollrec {command}")


def test_replay_help_shows_port_and_compare(capsys):
    text = _help(capsys, ["replay", "--help"])
    assert "--port" in text and "rollrec replay old.npz new.npz" in text


def test_original_spelling_help():
    out = subprocess.run([sys.executable, "-m", "rollrec.viewer", "--help"], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.returncode == 0
    _clean(out.stdout.replace("python -m rollrec.viewer", "python -m VIEWER"))  # the command itself is fine


@pytest.mark.parametrize("argv", [["--help"], ["info", "{file}"], ["info", "{file}", "--json"]])
def test_help_and_info_do_not_import_torch(argv):
    """Every command builds the whole parser; ``bench``'s must not pull torch (seconds) into
    ``rollrec --help`` or ``rollrec info``."""
    from pathlib import Path

    file = Path(__file__).parent / "io" / "data" / "v1_walker.npz"
    code = ("import sys\nfrom rollrec.cli import main\ntry:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    out = subprocess.run([sys.executable, "-c", code, *(a.format(file=file) for a in argv)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
