"""Running the RTL: stream formats, the RTL file list, simulator builds and jobs (see docs/microarchitecture.md)."""
