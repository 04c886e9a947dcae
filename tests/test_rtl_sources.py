"""The RTL's constants and sources, each written once: rtl/fineq_defs.vh against the Python side, rtl/files.f
against the tree and the package data, every consumer reading the one list."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from fineq.engine.config import POW2_SHIFT, EngineConfig, bpv, mac_psum_w, sum_w, tree_levels
from fineq.format.codec import ACT_BITS, BLOCK_BITS, BLOCK_BYTES, BLOCK_WEIGHTS, CLUSTERS_PER_BLOCK, W_BITS
from fineq.hw.sources import FILE_LIST, HEADER, rtl_sources

ROOT = Path(__file__).resolve().parents[1]
RTL = ROOT / "rtl"


def _defines() -> dict[str, str]:
    text = (RTL / HEADER).read_text()
    return {m.group(1): m.group(2).strip() for m in re.finditer(r"^`define\s+(\w+)\s+(.*)$", text, re.M)}


def test_header_constants_equal_python():
    d = _defines()
    assert int(d["FINEQ_BLOCK_BITS"]) == BLOCK_BITS == 8 * BLOCK_BYTES == 56
    assert int(d["FINEQ_BLOCK_WEIGHTS"]) == BLOCK_WEIGHTS == 24
    assert int(d["FINEQ_CLUSTERS"]) == CLUSTERS_PER_BLOCK
    assert int(d["FINEQ_W_BITS"]) == W_BITS and int(d["FINEQ_ACT_W"]) == ACT_BITS
    assert int(d["FINEQ_POW2_SHIFT"]) == POW2_SHIFT == 2  # the power-of-two PE's largest shift (levels 1, 2, 4)


ROWS = [1, 2, 5, 8, 16, 24, 64, 100, 128]


@pytest.mark.rtl
def test_header_widths_equal_python(tmp_path):
    """The header's width macros, evaluated by a Verilog simulator (Icarus), equal fineq.engine.config's."""
    import shutil
    import subprocess

    if shutil.which("iverilog") is None:
        pytest.skip("needs Icarus Verilog")
    calls = " ".join(f'$display("%0d %0d %0d %0d %0d %0d %0d", `FINEQ_LEVELS({n}), `FINEQ_SUM_W(8, {n}), '
                     f'`FINEQ_MAC_PSUM_W(8, 3, {n}), `FINEQ_MAC_PSUM_W(8, 4, {n}), `FINEQ_MAC_PSUM_W(8, 8, {n}), '
                     f'`FINEQ_BPV({n}), `FINEQ_SUM_W(8 + `FINEQ_POW2_SHIFT, {n}));' for n in ROWS)
    (tmp_path / "t.v").write_text(f'`include "{HEADER}"\nmodule t; initial begin {calls} end endmodule\n')
    subprocess.run(["iverilog", "-g2005", f"-I{RTL}", "-o", str(tmp_path / "t"), str(tmp_path / "t.v")], check=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "t")], capture_output=True, text=True, check=True).stdout
    got = [tuple(int(v) for v in line.split()) for line in out.splitlines() if line.strip()]
    assert got == [(tree_levels(n), sum_w(n), mac_psum_w(n), mac_psum_w(n, w_w=4), mac_psum_w(n, w_w=8), bpv(n),
                    sum_w(n, coding="pow2")) for n in ROWS]
    assert mac_psum_w(64) == 16 and mac_psum_w(64, w_w=8) == 21  # 128 * 127 * 64 < 2^20
    for n in (8, 16, 64):
        assert EngineConfig(n, 4).bpv == bpv(n) and EngineConfig(n, 4).sum_w == sum_w(n)
        assert EngineConfig(n, 4, coding="pow2").sum_w == sum_w(n) + POW2_SHIFT


def test_file_list_is_the_tree():
    listed = [str(p.relative_to(RTL)) for p in rtl_sources(RTL)]
    on_disk = sorted(str(p.relative_to(RTL)) for p in RTL.rglob("*.v"))
    assert listed == on_disk  # every file, in sorted order (Yosys's netlists depend on the order it reads them)
    for p in rtl_sources(RTL):  # every file includes the header, one module named like the file
        text = p.read_text()
        assert f'`include "{HEADER}"' in text, p
        assert re.findall(r"^module\s+(\w+)", text, re.M) == [p.stem], p


def test_package_data_covers_the_file_list():
    """pyproject's package-data patterns ship every file of files.f, the list and the header."""
    from fnmatch import fnmatch

    text = (ROOT / "pyproject.toml").read_text()
    pats = re.findall(r'"([^"]+)"', re.search(r'"fineq.hw" = \[([^]]*)\]', text).group(1))
    wanted = [f"rtl/{p.relative_to(RTL)}" for p in rtl_sources(RTL)] + [f"rtl/{FILE_LIST}", f"rtl/{HEADER}"]
    for w in wanted:
        assert any(fnmatch(w, p) and w.count("/") == p.count("/") for p in pats), w


def test_consumers_read_the_one_list():
    """Synthesis, lint and the testbenches take their files from rtl/files.f, not from a list of their own."""
    assert "rtl/files.f" in (ROOT / "synth" / "yosys_unit.tcl").read_text()
    assert "rtl/files.f" in (ROOT / "scripts" / "lint-rtl.sh").read_text()
    assert "sources.rtl_sources(RTL)" in (ROOT / "tb" / "fineq_tb" / "runner.py").read_text()
    for f in ["synth/yosys_unit.tcl", "scripts/lint-rtl.sh", "tb/fineq_tb/runner.py", "golden/fineq/hw/native.py",
              "golden/fineq/hw/icarus.py"]:
        assert "glob(" not in (ROOT / f).read_text() and "rglob(" not in (ROOT / f).read_text(), f


@pytest.mark.rtl
def test_parameter_errors_name_the_instance_and_the_values(tmp_path):
    """A bad parameter stops elaboration with a message naming the instance (%m) and the offending values."""
    import shutil
    import subprocess

    if shutil.which("iverilog") is None:
        pytest.skip("needs Icarus Verilog")
    (tmp_path / "t.v").write_text(
        "module t; wire [31:0] d; wire [3:0] b, n; wire [2:0] s;\n"
        "fineq_adder_tree #(.N(4), .COLS(1), .IN_W(8), .SUM_W(3)) u_bad (.data_i(d), .bits_i(b), .neg_i(n), .sum_o(s));\n"
        "endmodule\n")
    srcs = [str(p) for p in rtl_sources(RTL)]
    subprocess.run(["iverilog", "-g2005", f"-I{RTL}", "-s", "t", "-o", str(tmp_path / "t"), str(tmp_path / "t.v"), *srcs],
                   check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", str(tmp_path / "t")], capture_output=True, text=True)
    assert "t.u_bad: SUM_W (3) must be IN_W + 2 POW2 + 1 + clog2(N) = 11" in out.stdout + out.stderr
