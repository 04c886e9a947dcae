"""The command line (layer 8, the top): the parser and every command's handler."""
