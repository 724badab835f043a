#!/usr/bin/env python3
"""README's Swift snippets as a client package compiles them (Examples/ClientCheck).

Every ```swift block of README.md becomes, in Examples/ClientCheck/Sources/ClientCheck:
  - Snippets.swift: a function of its own (`throws`, or `async throws` when it awaits), taking
    `log: Log` when the snippet uses a log it does not open;
  - main.swift: a `do { }` block of top-level code, after a log opened at the top.
Its `import` lines move to the top of the file. A block whose first line starts with `.package(`
is a Package.swift fragment and is not compiled. The names a snippet takes from the application
(`orders`, `projection`, `logger`, ...) are in World.swift, written by hand.

  python3 scripts/readme-snippets.py          check: exit 1 when the generated files differ from README
  python3 scripts/readme-snippets.py --write  regenerate them
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
OUT = ROOT / "Examples" / "ClientCheck" / "Sources" / "ClientCheck"
HEADER = "// Generated from README.md by scripts/readme-snippets.py --write: do not edit.\n"
IMPORTS = ["import EventLog", "import Foundation", "import Logging", "import ServiceLifecycle"]


def snippets():
    lines = README.read_text().splitlines()
    blocks, current, start = [], None, 0
    for number, line in enumerate(lines, 1):
        if current is None and line.strip() == "```swift":
            current, start = [], number + 1
        elif current is not None and line.strip() == "```":
            blocks.append((start, current))
            current = None
        elif current is not None:
            current.append(line)
    if current is not None:
        sys.exit(f"README.md: the swift block at line {start} is not closed")
    return [(start, body) for start, body in blocks if body and not body[0].lstrip().startswith(".package(")]


def split_imports(body):
    imports = [l.strip() for l in body if l.startswith("import ")]
    code = [l for l in body if not l.startswith("import ")]
    while code and not code[0].strip():
        code.pop(0)
    for name in imports:
        if name not in IMPORTS:
            sys.exit(f"README.md: `{name}`: add it to IMPORTS in scripts/readme-snippets.py and to the package")
    return code


def opens_log(code):
    return any(re.match(r"\s*let log = ", l) for l in code)


def indent(code, by="    "):
    return "\n".join((by + l) if l.strip() else "" for l in code)


def generate():
    functions, top = [], []
    for index, (line, body) in enumerate(snippets(), 1):
        code = split_imports(body)
        text = "\n".join(code)
        effects = "async throws" if re.search(r"\bawait\b", text) else "throws"
        parameter = "" if opens_log(code) else "log: Log"
        functions.append(f"// README.md, Swift snippet {index}\nfunc readmeSnippet{index}({parameter}) {effects} {{\n{indent(code)}\n}}\n")
        prologue = [] if opens_log(code) else ["let log = readmeLog"]
        top.append(f"// README.md, Swift snippet {index}\ndo {{\n{indent(prologue + code)}\n}}\n")
    imports = "\n".join(IMPORTS) + "\n"
    snippets_file = HEADER + imports + "\n" + "\n".join(functions)
    main_file = (HEADER + imports + "\n"
                 + "// Built, never run: each block is the README's code as top-level code.\n"
                 + "let readmeLog = try Log.open(at: NSTemporaryDirectory() + \"/eventlog-client-check\")\n\n"
                 + "\n".join(top))
    return {"Snippets.swift": snippets_file, "main.swift": main_file}


def main():
    files = generate()
    if "--write" in sys.argv[1:]:
        for name, text in files.items():
            (OUT / name).write_text(text)
        return 0
    stale = [name for name, text in files.items() if not (OUT / name).exists() or (OUT / name).read_text() != text]
    if stale:
        print(f"README.md's Swift snippets differ from Examples/ClientCheck ({', '.join(stale)}): "
              "run python3 scripts/readme-snippets.py --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
