"""Risk analysis in numbers: quorum model, credential ageing, reaction window, backup coverage.

Pure domain code: no hardware, no UI. The CLI (`appliance.analysis.cli`) and the TUI call the
functions here; floats are fine in this package (nothing here is hashed or signed).
"""
