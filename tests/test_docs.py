"""The documentation stays true to the code: the generated flags reference is current, the README stays a
short front door, and every relative link and #anchor in the Markdown files reaches a file and a heading."""

from __future__ import annotations

import pathlib
import re

import pytest

from bilstm_kd import config, flags_reference

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FLAGS_DOC = ROOT / "docs" / "flags.md"

# [text](target) and ![alt](target); the target ends at the first space (a title may follow) or ")".
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
FENCE = re.compile(r"^ {0,3}(```|~~~)")
INLINE_CODE = re.compile(r"(`+).*?\1")


def markdown_files() -> list[pathlib.Path]:
    files = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "BUILD.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [path for path in files if path.exists()]


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (links and headings inside code are not Markdown)."""
    lines, in_code = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            lines.append(line)
    return lines


def github_anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: link markup kept as its text, lowercase, punctuation dropped (letters,
    digits, '_' and '-' stay), each space a hyphen."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading).strip().lower()
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: pathlib.Path) -> set[str]:
    """Every heading anchor of a Markdown file; a repeated heading gets -1, -2, ... as on GitHub."""
    found: set[str] = set()
    counts: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if match:
            anchor = github_anchor(match.group(2))
            counts[anchor] = counts.get(anchor, -1) + 1
            found.add(anchor if counts[anchor] == 0 else f"{anchor}-{counts[anchor]}")
    return found


def links(path: pathlib.Path) -> list[str]:
    """The link targets of a Markdown file, outside code blocks and inline code."""
    targets = []
    for line in prose_lines(path.read_text(encoding="utf-8")):
        targets.extend(LINK.findall(INLINE_CODE.sub("", line)))
    return targets


def dead_links(path: pathlib.Path) -> list[str]:
    """The relative links of `path` that name no existing file, or a heading its Markdown file lacks."""
    dead = []
    for target in links(path):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked offline
            continue
        file_part, _, anchor = target.partition("#")
        linked = (path.parent / file_part).resolve() if file_part else path
        if not linked.exists():
            dead.append(f"{target} (no file {linked})")
        elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
            dead.append(f"{target} (no heading '#{anchor}' in {linked.name})")
    return dead


def test_flags_reference_is_current():
    assert FLAGS_DOC.read_text(encoding="utf-8") == flags_reference.render(), (
        f"docs/flags.md is stale: run `{flags_reference.COMMAND}`"
    )


def test_flags_reference_lists_every_flag_once():
    listed = re.findall(r"^\| `--(\w+)` \|", flags_reference.render(), flags=re.MULTILINE)
    assert sorted(listed) == sorted(field.name for field in config.flag_fields())


def test_flags_reference_check_fails_on_a_stale_file(tmp_path, capsys):
    current = tmp_path / "flags.md"
    current.write_text(flags_reference.render(), encoding="utf-8")
    assert flags_reference.main(["--check", str(current)]) == 0
    stale = tmp_path / "stale.md"
    stale.write_text(flags_reference.render().replace("--teacher_epochs", "--teacher_epoch"), encoding="utf-8")
    assert flags_reference.main(["--check", str(stale)]) == 1
    assert "stale" in capsys.readouterr().err
    assert flags_reference.main(["--check", str(tmp_path / "missing.md")]) == 1


def test_readme_is_short():
    text = README.read_text(encoding="utf-8")
    assert len(text.encode("utf-8")) < 10_000
    long_lines = [line for line in text.splitlines() if len(line) > 120]
    assert not long_lines, long_lines


def test_readme_links_every_document():
    linked = {target.partition("#")[0] for target in links(README)}
    expected = {"CHANGELOG.md", "BUILD.md", *(f"docs/{path.name}" for path in (ROOT / "docs").glob("*.md"))}
    assert expected <= linked, sorted(expected - linked)


def test_readme_keeps_the_ci_test_command():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci
    assert re.search(r"^make test\b", README.read_text(encoding="utf-8"), flags=re.MULTILINE)
    assert re.search(r"^make demo\b", README.read_text(encoding="utf-8"), flags=re.MULTILINE)


@pytest.mark.parametrize("path", markdown_files(), ids=lambda path: str(path.relative_to(ROOT)))
def test_no_dead_links(path):
    assert not dead_links(path)


@pytest.mark.parametrize(
    ("heading", "anchor"),
    [
        ("Your own data", "your-own-data"),
        ("More devices, more machines (`--strategy`)", "more-devices-more-machines---strategy"),
        ("On a GPU: `--lstm_kernel` & co.", "on-a-gpu---lstm_kernel--co"),
        ("See [the flags](docs/flags.md)", "see-the-flags"),
    ],
)
def test_github_anchor(heading, anchor):
    assert github_anchor(heading) == anchor


def test_dead_links_are_found(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A part\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n[ok](other.md#a-part) [ok](#page) [web](https://example.com) `[code](missing.md)`\n"
        "[gone](missing.md) [bad anchor](other.md#no-such-part) [bad local](#nowhere)\n"
        "```\n[in a code block](missing.md)\n```\n",
        encoding="utf-8",
    )
    assert [entry.split(" ")[0] for entry in dead_links(page)] == ["missing.md", "other.md#no-such-part", "#nowhere"]
