#!/usr/bin/env python3
"""Re-runs every `$ nnmem …` example in the docs and writes its real output back, so the docs stay true
to what the code prints. With --check, changes nothing and exits 1 when an example's output differs.

Usage (from the repository root, after `cargo build --release`):
    python3 scripts/refresh_doc_examples.py [--check] [FILE.md ...]   # default: README.md docs/*.md

In a fenced block, a line `$ nnmem ARGS` is run (with target/release/nnmem) from the repository root; the lines
after it up to the next `$ ` line or the end of the block are its output (stdout, then stderr lines prefixed as
nnmem prints them when the example shows them). `$ echo $?` prints the previous command's exit code. A command
may use `|` and other shell syntax: it runs under `sh -c`.
"""
import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(command):
    env = dict(os.environ, PATH=os.path.join(ROOT, "target", "release") + os.pathsep + os.environ["PATH"], NO_COLOR="1")
    p = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    return p.returncode, p.stdout, p.stderr


def refresh(text):
    out, lines, i = [], text.split("\n"), 0
    in_block, last_code, shows_stderr = False, 0, False
    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            in_block = not in_block
            out.append(line)
            i += 1
            continue
        if in_block and line.startswith("$ "):
            out.append(line)
            command = line[2:]
            # The old output, to see whether it showed stderr.
            j = i + 1
            old = []
            while j < len(lines) and not lines[j].startswith("$ ") and not lines[j].startswith("```"):
                old.append(lines[j])
                j += 1
            shows_stderr = any(l.startswith("nnmem: ") for l in old)
            if command.strip() == "echo $?":
                new = [str(last_code)]
            else:
                last_code, stdout, stderr = run(command)
                new = stdout.rstrip("\n").split("\n") if stdout.strip() else []
                if shows_stderr:
                    new += [l for l in stderr.rstrip("\n").split("\n") if l]
            out.extend(new)
            # Keep the blank lines that separated this example from the next.
            blanks = 0
            for l in reversed(old):
                if l.strip():
                    break
                blanks += 1
            out.extend([""] * blanks)
            i = j
            continue
        out.append(line)
        i += 1
    return "\n".join(out)


def main():
    args = [a for a in sys.argv[1:] if a != "--check"]
    check = "--check" in sys.argv[1:]
    files = args or [os.path.join(ROOT, "README.md")] + sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    stale = []
    for f in files:
        text = open(f, encoding="utf-8").read()
        new = refresh(text)
        if new != text:
            stale.append(f)
            if not check:
                open(f, "w", encoding="utf-8").write(new)
    for f in stale:
        print(("stale: " if check else "refreshed: ") + os.path.relpath(f, ROOT))
    sys.exit(1 if check and stale else 0)


if __name__ == "__main__":
    main()
