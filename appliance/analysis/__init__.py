"""Risk analysis in numbers: quorum model, credential ageing, reaction window, backup coverage.

Pure domain code: no hardware, no UI. The CLI (`appliance.analysis.cli`) and the TUI call the
modules below; floats are fine here (nothing in this package is hashed or signed).

- `quorum`: k-of-n sets and any/all structures -> P(denial), P(compromise) (exact).
- `poisson_binomial`: the exact count distribution behind it.
- `horizon`: holders lost and cards failing per year, retest interval advice.
- `search`: every (n, k) against targets, with margins; `plot`: the frontier PNG (Pillow).
- `estimates`, `beta`: Beta posteriors of absence from attendance; `attendance`,
  `journals`: the attendance files and the engine's ceremony journals.
- `structure_file`: TOML structure files with file/line errors.
- `reaction`, `durations`: the reaction window from kasp.xml, knot.conf or a signed zone.
- `coverage`: which keys no backup holds, how far ahead keys exist.
- `render`: the plain-text tables both the CLI and the TUI show.
"""
