"""Ceremony engine: scripts as data, an actions registry, the operator port and the journal.

Layers: `model`/`loader` (scripts), `params`/`registry`/`actions` (what a step may do),
`operator` (the port through which the engine asks people), `journal` (hash-chained record),
`engine` (the state machine), `answers` (the headless operator), `render` (paper copies).
Nothing here imports Textual; the TUI implements `operator.Operator`.
"""
