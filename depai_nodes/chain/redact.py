"""Copy anvil's output to a log file with its private keys and mnemonic removed.

Standalone (standard library only): ``anvil.py`` runs it as ``python redact.py LOG`` with
anvil's stdout on its stdin, so it needs no package import path. anvil prints the private key of
every account it funds ("Private Keys" section) and the mnemonic they come from; even the
public demo keys must not sit in a file (a key in a log is how real keys leak, and the same
printing happens with a custom mnemonic). Everything else (requests, tx hashes) is kept.

The log is created with mode 0600 and appended to; each line is flushed, and the process ends
when anvil does (end of its stdout).
"""

from __future__ import annotations

import os
import re
import sys

__all__ = ["Redactor", "main"]

_KEY = re.compile(r"0x[0-9a-fA-F]{64}\b")
_MNEMONIC = re.compile(r"^(\s*Mnemonic:\s*).*$", re.IGNORECASE)
_PRIVATE_HEADER = re.compile(r"^\s*Private Keys\s*$", re.IGNORECASE)
_SECTION_RULE = re.compile(r"^\s*=+\s*$")


class Redactor:
    """Line filter. Inside the "Private Keys" section every 32-byte hex value is a key."""

    def __init__(self) -> None:
        self.in_keys = False
        self.seen_entry = False

    def __call__(self, line: str) -> str:
        if _PRIVATE_HEADER.match(line):
            self.in_keys, self.seen_entry = True, False
            return line
        if self.in_keys:
            if _SECTION_RULE.match(line):
                return line
            if not line.strip():
                if self.seen_entry:
                    self.in_keys = False
                return line
            if _KEY.search(line):
                self.seen_entry = True
                return _KEY.sub("0x<redacted private key>", line)
            self.in_keys = False  # the next section began without a blank line
        m = _MNEMONIC.match(line.rstrip("\n"))
        if m:
            return m.group(1) + "<redacted mnemonic>" + ("\n" if line.endswith("\n") else "")
        return line


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: redact.py LOGFILE  (reads stdin)", file=sys.stderr)
        return 2
    fd = os.open(argv[0], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    os.fchmod(fd, 0o600)
    redact = Redactor()
    with os.fdopen(fd, "w", buffering=1) as out:
        for line in sys.stdin:
            out.write(redact(line))
    return 0


if __name__ == "__main__":
    sys.exit(main())
