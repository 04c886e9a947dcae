"""Per-bit switching activity from a VCD: toggles per clock cycle and duty (time high / total time)."""

from __future__ import annotations

from pathlib import Path

Bits = list[tuple[float, float]]


def activity(vcd: Path, scope: str, names: list[str], clock: str = "clk_i") -> tuple[int, dict[str, Bits]]:
    """Return ``(cycles, {name: [(toggles per cycle, duty) per bit, bit 0 first]})`` for signals of ``scope``.

    X and Z read as 0. Cycles are the rising edges of ``clock`` in the dump.
    """
    want = set(names) | {clock}
    ids: dict[str, tuple[str, int]] = {}
    stack: list[str] = []
    with open(vcd) as fh:
        for line in fh:
            tok = line.split()
            if not tok:
                continue
            if tok[0] == "$scope":
                stack.append(tok[2])
            elif tok[0] == "$upscope":
                stack.pop()
            elif tok[0] == "$var" and stack and stack[-1] == scope and tok[4] in want:
                ids.setdefault(tok[3], (tok[4], int(tok[2])))
            elif tok[0] == "$enddefinitions":
                break
        missing = want - {n for n, _ in ids.values()}
        if missing:
            raise SystemExit(f"{vcd}: scope {scope} lacks {sorted(missing)} (is the trace depth right?)")
        val = {i: 0 for i in ids}
        last = {i: [0] * w for i, (_, w) in ids.items()}  # time of each bit's last change
        high = {i: [0] * w for i, (_, w) in ids.items()}
        tog = {i: [0] * w for i, (_, w) in ids.items()}
        clk_id = next(i for i, (n, _) in ids.items() if n == clock)
        t = 0
        edges = 0
        for line in fh:
            c = line[0]
            if c == "#":
                t = int(line[1:])
                continue
            if c == "b":
                bits, ident = line[1:].split()
                new = int(bits.replace("x", "0").replace("z", "0"), 2)
            elif c in "01xz":
                ident = line[1:].strip()
                new = 1 if c == "1" else 0
            else:
                continue
            if ident not in ids:
                continue
            old = val[ident]
            diff = old ^ new
            if ident == clk_id and new and not old:
                edges += 1
            lst, hi, tg = last[ident], high[ident], tog[ident]
            while diff:
                low = diff & -diff
                b = low.bit_length() - 1
                if old >> b & 1:
                    hi[b] += t - lst[b]
                lst[b] = t
                tg[b] += 1
                diff ^= low
            val[ident] = new
        end = t
    out: dict[str, Bits] = {}
    for i, (name, w) in ids.items():
        if name == clock:
            continue
        res = []
        for b in range(w):
            h = high[i][b] + ((end - last[i][b]) if val[i] >> b & 1 else 0)
            res.append((tog[i][b] / max(edges, 1), h / end if end else 0.0))
        out[name] = res
    return edges, out


def lane_mean(bits: Bits, width: int, lanes: int) -> Bits:
    """Average a packed bus of ``lanes`` lanes of ``width`` bits into one lane's per-bit activity."""
    res = []
    for b in range(width):
        sel = [bits[width * c + b] for c in range(lanes)]
        res.append((sum(a for a, _ in sel) / lanes, sum(d for _, d in sel) / lanes))
    return res
