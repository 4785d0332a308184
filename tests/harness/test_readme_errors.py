"""The README's error examples are what the harness prints.

Every ``$ harness ...`` line of README.md followed by a ``harness <command>: error:`` line is run
in-process (``harness.cli.main``) from a scratch directory holding a copy of ``studies/``, and its
stderr must equal the README's lines, after three substitutions that make the examples
repeatable on any machine: the ports the README names (5000, 5999, 8786) become ports this test
controls (one busy, two closed), ``/home/me/nn-harness`` becomes the scratch directory, and
``harness ui`` gets ``--dry-run``. The stored ``smoke`` study the resume example refuses is
created from the shipped ``studies/smoke.yaml`` without training (its spec hash is what the
check compares).
"""

from __future__ import annotations

import re
import shlex
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli import main
from tests.servers import free_port

REPO = Path(__file__).resolve().parents[2]
README_HOME = "/home/me/nn-harness"
ERROR_LINE = re.compile(r"^harness [\w-]+: error: ")


def _examples() -> list[tuple[str, list[str]]]:
    """(command, expected stderr lines) for every error example in the README's code blocks."""
    lines = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    out: list[tuple[str, list[str]]] = []
    in_block = False
    for i, line in enumerate(lines):
        if line.startswith("```"):
            in_block = not in_block
            continue
        if not (in_block and line.startswith("$ harness ")):
            continue
        expected = []
        for following in lines[i + 1 :]:
            if following.startswith(("$ ", "```")):
                break
            expected.append(following)
        if expected and ERROR_LINE.match(expected[0]):
            command = line[2:]
            if " # " in command:  # a comment after the command
                command = command[: command.index(" # ")]
            out.append((command.strip(), expected))
    return out


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, dict[str, str]]]:
    import optuna

    from harness.config import load_yaml
    from harness.study.runner import _ATTR_SPEC
    from harness.study.spec import parse_study
    from harness.study.storage import default_storage_url, make_storage

    root = tmp_path_factory.mktemp("readme_errors")
    shutil.copytree(REPO / "studies", root / "studies")
    # the README's `my_run.yaml`: two `train:` sections
    (root / "my_run.yaml").write_text(
        "name: my_run\ndata: {name: digits}\ntrain: {epochs: 5}\ntrain: {batch_size: 64}\n"
    )
    # a stored `smoke` study, as `harness sweep studies/smoke.yaml` leaves it (hash included)
    spec = parse_study(load_yaml(root / "studies" / "smoke.yaml"), source="studies/smoke.yaml")
    storage = make_storage(default_storage_url("smoke", root=root))
    study = optuna.create_study(study_name="smoke", storage=storage, direction="maximize")
    study.set_user_attr(_ATTR_SPEC, spec.fingerprint())
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = int(busy.getsockname()[1])
        ports = {
            "5000": str(port),
            "5001": str(port + 1),
            "5999": str(free_port()),
            "8786": str(free_port()),
        }
        yield root, ports


def test_the_readme_has_error_examples() -> None:
    assert len(EXAMPLES) >= 15, [c for c, _ in EXAMPLES]


@pytest.mark.parametrize(("command", "expected"), EXAMPLES, ids=[c for c, _ in EXAMPLES])
def test_readme_error_example(
    command: str,
    expected: list[str],
    scratch: tuple[Path, dict[str, str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root, ports = scratch
    monkeypatch.chdir(root)
    for key in ("MLFLOW_TRACKING_URI", "HARNESS_DATA_DIR", "DASK_SCHEDULER_ADDRESS"):
        monkeypatch.delenv(key, raising=False)

    ui = command.split()[1] == "ui"
    # the ports this example is about: the ones it names, and for `harness ui` its default 5000
    mine = {p: q for p, q in ports.items() if p in command or (ui and p in ("5000", "5001"))}

    def local(text: str) -> str:
        text = text.replace(README_HOME, str(root))
        return re.sub(r"\b\d{4}\b", lambda m: mine.get(m[0], m[0]), text)

    argv = shlex.split(local(command))[1:]
    if ui:
        argv += ["--dry-run"] + ([] if "--port" in argv else ["--port", ports["5000"]])
    from harness.study.storage import default_storage_url, journal_path

    journal = journal_path(default_storage_url("smoke", root=root))
    assert journal is not None
    before = journal.read_bytes()
    capsys.readouterr()
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit {code}\n{out}\n{err}"
    assert err.rstrip("\n").splitlines() == [local(line) for line in expected]
    assert journal.read_bytes() == before  # nothing deleted or written (--fresh included)
