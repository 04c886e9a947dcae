# Turn a mapped netlist into a simulatable one: liberty cells become their functions (environment:
# LIB, NETLIST, UNIT_TOP, OUT). The gate-level simulation then runs the block's own testbench on it.
yosys -import
if {$::env(LIB) ne ""} { read_liberty -ignore_miss_func $::env(LIB) }
read_verilog $::env(NETLIST)
hierarchy -check -top $::env(UNIT_TOP)
flatten
opt_clean
write_verilog -noattr $::env(OUT)
