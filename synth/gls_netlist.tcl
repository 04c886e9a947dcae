# Turn a mapped netlist into a simulatable one: liberty cells become their functions (environment:
# LIB, NETLIST, UNIT_TOP, OUT). The gate-level simulation then runs the block's own testbench on it.
# The clock-gate cell's function is a statetable that Yosys does not model: synth/cells/ gives it.
yosys -import
if {$::env(LIB) ne ""} {
  read_liberty -ignore_miss_func $::env(LIB)
  read_verilog -overwrite synth/cells/CLKGATETST_X1.v
}
read_verilog $::env(NETLIST)
hierarchy -check -top $::env(UNIT_TOP)
yosys proc
flatten
opt_clean
write_verilog -noattr $::env(OUT)
