"""What a terminal shows for a stream of output: the plain-text side of `make record`.

`render(output, width)` replays the output on an unbounded screen (the scrollback plus
the visible rows) and returns its text: SGR colours, cursor hiding, titles and other
escapes leave no trace, `\\r` returns to the start of the line, and a live display that
redraws itself (cursor up, erase line, as rich's Live does) leaves only its last frame,
as a terminal would. Pure and stdlib-only: the unit tests import it to check that each
`.txt` recording is the rendering of its `.cast`.

Invariants: the result never holds an ESC or another control character but `\\n`; lines
carry no trailing blanks; the text ends with exactly one `\\n` (or is empty).
"""

from __future__ import annotations

import re

# CSI (ESC [ params intermediates final), OSC (ESC ] ... BEL or ESC \), any other two-char escape
_CSI = re.compile(r"\x1b\[([0-?]*)([ -/]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
_ESC2 = re.compile(r"\x1b[@-Z\\-_]")
ANSI = re.compile(f"{_CSI.pattern}|{_OSC.pattern}|{_ESC2.pattern}")


def strip_ansi(text: str) -> str:
    """The text without escape sequences (no cursor semantics: see `render` for those)."""
    return ANSI.sub("", text)


def _number(params: str, default: int) -> int:
    first = params.lstrip("?").split(";")[0]
    return int(first) if first.isdigit() and int(first) > 0 else default


def render(output: str, width: int = 100, height: int = 30) -> str:
    """The screen and scrollback after `output` was written to a `width`-column terminal."""
    lines: list[list[str]] = [[]]
    row = col = 0

    def at(r: int) -> list[str]:
        while len(lines) <= r:
            lines.append([])
        return lines[r]

    pos = 0
    while pos < len(output):
        ch = output[pos]
        if ch == "\x1b":
            match = _CSI.match(output, pos)
            if match:
                params, _, final = match.groups()
                pos = match.end()
                top = max(0, len(lines) - height)  # cursor moves stay inside the visible rows
                if final == "A":
                    row = max(top, row - _number(params, 1))
                elif final in "BE":
                    row += _number(params, 1)
                    col = 0 if final == "E" else col
                elif final == "F":
                    row, col = max(top, row - _number(params, 1)), 0
                elif final == "C":
                    col = min(width - 1, col + _number(params, 1))
                elif final == "D":
                    col = max(0, col - _number(params, 1))
                elif final == "G":
                    col = min(width - 1, _number(params, 1) - 1)
                elif final in "Hf":
                    parts = [*params.split(";"), "", ""]
                    row = top + (int(parts[0]) - 1 if parts[0].isdigit() and int(parts[0]) > 0 else 0)
                    col = int(parts[1]) - 1 if parts[1].isdigit() and int(parts[1]) > 0 else 0
                elif final == "K":
                    mode, line = _number(params, 0) if params else 0, at(row)
                    if mode == 0:
                        del line[col:]
                    elif mode == 1:
                        line[: col + 1] = [" "] * min(len(line), col + 1)
                    else:
                        line.clear()
                elif final == "J":
                    mode = _number(params, 0) if params else 0
                    if mode == 0:
                        del at(row)[col:]
                        del lines[row + 1:]
                    elif mode in (2, 3):  # clear the visible rows; scrollback stays
                        del lines[top:]
                        row, col = top, 0
                # m (colour), h/l (modes), s/u and the rest: nothing to show
                continue
            match = _OSC.match(output, pos) or _ESC2.match(output, pos)
            pos = match.end() if match else pos + 1
            continue
        pos += 1
        if ch == "\r":
            col = 0
        elif ch == "\n":
            row, col = row + 1, 0
            at(row)
        elif ch == "\b":
            col = max(0, col - 1)
        elif ch == "\t":
            col = min(width - 1, (col // 8 + 1) * 8)
        elif ch < " " or ch == "\x7f":
            continue
        else:
            if col >= width:  # autowrap
                row, col = row + 1, 0
            line = at(row)
            if len(line) < col:
                line.extend(" " * (col - len(line)))
            if col < len(line):
                line[col] = ch
            else:
                line.append(ch)
            col += 1
    text = "\n".join("".join(line).rstrip() for line in lines).rstrip("\n")
    return text + "\n" if text else ""
