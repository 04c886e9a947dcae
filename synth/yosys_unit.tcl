# Synthesize one unit (environment: UNIT_TOP, UNIT_HP = "-set K V ...", UNIT_FLATTEN 0/1,
# LIB = uncompressed liberty or empty, CLOCK_PS, OUT = output folder). Run from the repository root.
yosys -import
set top $::env(UNIT_TOP)
set lib $::env(LIB)
set out $::env(OUT)
# The design's files: rtl/files.f, the RTL's one file list (comments after #); rtl/ is the include folder.
set srcs {}
set fl [open rtl/files.f r]
foreach line [split [read $fl] "\n"] {
  set line [string trim [lindex [split $line "#"] 0]]
  if {$line ne ""} { lappend srcs rtl/$line }
}
close $fl
# With a liberty, clock gates are its integrated clock-gate cell (rtl/fineq_clock_gate.v), kept as a black box.
if {$lib ne ""} {
  read_liberty -lib $lib
  foreach f $srcs { read_verilog -Irtl -DFINEQ_ICG_NANGATE45 $f }
} else {
  foreach f $srcs { read_verilog -Irtl $f }
}
# chparam on the elaborated top (read_verilog -defer with hierarchy -chparam trips an assertion in 0.23)
if {$::env(UNIT_HP) ne ""} { chparam {*}$::env(UNIT_HP) $top }
hierarchy -check -top $top
yosys rename -top $top
# Plain synth: no extract_fa (wrong results in Yosys 0.23), alumacc on, hierarchy kept unless flattened.
if {$::env(UNIT_FLATTEN)} { synth -top $top -flatten } else { synth -top $top }
if {$lib ne ""} {
  dfflibmap -liberty $lib
  abc -liberty $lib -D $::env(CLOCK_PS)
  hilomap -singleton -hicell LOGIC1_X1 Z -locell LOGIC0_X1 Z
  splitnets
  opt_clean -purge
  insbuf -buf BUF_X1 A Z
  tee -o $out/stat.txt stat -liberty $lib -top $top
} else {
  # library-free: map to simple CMOS gates and count transistors
  abc -g cmos2
  opt_clean -purge
  tee -o $out/stat.txt stat -tech cmos -top $top
}
if {$lib ne ""} {
  write_verilog -noattr -noexpr $out/netlist.v
} else {
  # generic gates as expressions: Yosys and the simulators read them back without a cell library
  write_verilog -noattr $out/netlist.v
}
