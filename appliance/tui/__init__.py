"""The operator's console (Textual): a view over the ceremony engine.

Only this package imports Textual.
"""
