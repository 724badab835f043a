#!/usr/bin/env python3
"""README's and the DocC articles' Swift snippets as a client compiles them (the ClientCheck target, Tests/ClientCheck).

Every ```swift block of README.md, then of each article of Sources/EventLog/EventLog.docc (by name), becomes, in Tests/ClientCheck:
  - Snippets.swift: a function of its own (`throws`, or `async throws` when it awaits), taking
    `log: Log` when the snippet uses a log it does not open;
  - main.swift: a `do { }` block of top-level code, after a log opened at the top.
Its `import` lines move to the top of the file. A block with a line that starts with `.package(`
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
DOCC = ROOT / "Sources" / "EventLog" / "EventLog.docc"
OUT = ROOT / "Tests" / "ClientCheck"
HEADER = "// Generated from README.md and Sources/EventLog/EventLog.docc by scripts/readme-snippets.py --write: do not edit.\n"
IMPORTS = ["import EventLog", "import Foundation", "import Logging", "import ServiceLifecycle"]


def sources():
    """(label, prefix, path): README first, then the DocC articles by name."""
    found = [("README.md", "readme", README)]
    for article in sorted(DOCC.glob("*.md")):
        found.append((f"EventLog.docc/{article.name}", "docc" + re.sub(r"\W", "", article.stem), article))
    return found


def snippets():
    """(label, function name, body) of every compiled block, in order."""
    result = []
    for label, prefix, path in sources():
        lines = path.read_text().splitlines()
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
            sys.exit(f"{label}: the swift block at line {start} is not closed")
        # A Package.swift fragment (a `.package(` line) is not code to compile.
        kept = [body for start, body in blocks if body and not any(l.lstrip().startswith(".package(") for l in body)]
        for index, body in enumerate(kept, 1):
            result.append((f"{label}, Swift snippet {index}", f"{prefix}Snippet{index}", body))
    return result


def split_imports(body, label):
    imports = [l.strip() for l in body if l.startswith("import ")]
    code = [l for l in body if not l.startswith("import ")]
    while code and not code[0].strip():
        code.pop(0)
    for name in imports:
        if name not in IMPORTS:
            sys.exit(f"{label}: `{name}`: add it to IMPORTS in scripts/readme-snippets.py and to the package")
    return code


def opens_log(code):
    return any(re.match(r"\s*let log = ", l) for l in code)


def indent(code, by="    "):
    return "\n".join((by + l) if l.strip() else "" for l in code)


def generate():
    functions, top = [], []
    for label, name, body in snippets():
        code = split_imports(body, label)
        text = "\n".join(code)
        effects = "async throws" if re.search(r"\bawait\b", text) else "throws"
        parameter = "" if opens_log(code) else "log: Log"
        functions.append(f"// {label}\nfunc {name}({parameter}) {effects} {{\n{indent(code)}\n}}\n")
        prologue = [] if opens_log(code) else ["let log = readmeLog", "_ = log"]
        top.append(f"// {label}\ndo {{\n{indent(prologue + code)}\n}}\n")
    imports = "\n".join(IMPORTS) + "\n"
    snippets_file = HEADER + imports + "\n" + "\n".join(functions)
    main_file = (HEADER + imports + "\n"
                 + "// Built, never run: each block is a snippet's code as top-level code.\n"
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
        print(f"The Swift snippets of README.md and EventLog.docc differ from Tests/ClientCheck ({', '.join(stale)}): "
              "run python3 scripts/readme-snippets.py --write", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
