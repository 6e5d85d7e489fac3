"""Regenerate `shine_mcp/iso4217.json`, the currencies' minor units, from ISO 4217 "List One".

The table is read from the `iso4217` PyPI package (public domain), which ships the list the ISO 4217
maintenance agency (SIX) publishes as `list-one.xml`; it is not a dependency of Shine, only of this script.

Run: `.venv/bin/python scripts/iso4217_table.py [--version 1.16.20260101] [--check]` (needs pip and the
registry). `--check` compares with the committed file without writing it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

VERSION = "1.16.20260101"
DEST = Path(__file__).resolve().parent.parent / "shine_mcp" / "iso4217.json"


def table(xml: bytes, version: str) -> dict[str, object]:
    root = ET.fromstring(xml)
    minor_units: dict[str, int] = {}
    for entry in root.iter("CcyNtry"):
        code, units = entry.findtext("Ccy"), entry.findtext("CcyMnrUnts")
        if code and units and units.isdigit():  # "N.A." for gold, SDR and other units with no minor unit
            minor_units[code] = int(units)
    return {
        "source": "ISO 4217 List One (SIX), as shipped in the iso4217 PyPI package (public domain)",
        "package": f"iso4217=={version}",
        "published": root.get("Pblshd"),
        "minor_units": dict(sorted(minor_units.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default=VERSION)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--no-deps",
                "--target",
                tmp,
                f"iso4217=={args.version}",
            ],
            check=True,
        )
        xml = (Path(tmp) / "iso4217" / "table.xml").read_bytes()
    text = json.dumps(table(xml, args.version), indent=1) + "\n"
    if args.check:
        same = DEST.exists() and DEST.read_text() == text
        print("up to date" if same else f"{DEST} differs from ISO 4217 list one {args.version}")
        return 0 if same else 1
    DEST.write_text(text)
    print(f"wrote {DEST}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
