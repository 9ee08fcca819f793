"""The README stays true: every ktrdr command it shows exists, and its make targets too."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ktrdr.cli.app import app

ROOT = Path(__file__).resolve().parents[2]


def shown_commands() -> list[list[str]]:
    text = (ROOT / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.splitlines():
            for part in re.split(r"\s{3,}|&&", line.split("#")[0]):
                words = part.split()
                if words[:1] != ["ktrdr"]:
                    continue
                path = []
                for word in words[1:]:
                    if word.startswith(("-", "[", "<")) or not re.fullmatch(r"[a-z|-]+", word):
                        break
                    path.append(word.split("|")[0])
                commands.append(path)
    return commands


def test_the_readme_shows_commands() -> None:
    assert len(shown_commands()) >= 15


@pytest.mark.parametrize("words", shown_commands(), ids=" ".join)
def test_every_command_in_the_readme_exists(words: list[str]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"])
    assert result.exit_code == 0, result.output


def test_the_two_make_targets_exist() -> None:
    for target in ("demo", "test"):
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, dry.stderr
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci
