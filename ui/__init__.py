"""AccoBridge front ends: the command line and (later) the PyQt6 panel. Nothing imports ui."""
