"""The documentation keeps up with the code: every setting and command is documented,
every linked document exists."""
import re
import subprocess
import sys
from pathlib import Path

from data.settings import SETTINGS

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_readme_table():
    documented = set(re.findall(r"^\| `([A-Z_]+)` \|", README, flags=re.M))
    assert documented == {s.name for s in SETTINGS}


def test_every_command_of_the_readme_is_in_the_help():
    result = subprocess.run([sys.executable, "app.py", "--help"], cwd=ROOT, capture_output=True,
                            text=True, check=True)
    commands = set(re.findall(r"^  ([a-z-]+) ", result.stdout, flags=re.M))
    in_readme = set(re.findall(r"`python app\.py ([a-z][a-z-]*)", README))
    assert in_readme <= commands, in_readme - commands
    assert {"serve", "init-db", "demo", "import", "kpis"} <= commands


def test_linked_documents_exist():
    for link in re.findall(r"\]\(((?:docs|\.)[^)#]+)\)", README):
        assert (ROOT / link).exists(), link
