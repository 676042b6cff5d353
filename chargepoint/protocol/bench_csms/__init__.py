"""The bench CSMS: a small central system for the demo, the benches and the tests.

It speaks every version the station does (``v16.CentralSystem`` accepts the
connection and keeps the ledger; ``v201`` and ``v21`` add their peers), and
lives apart from the station's adapters so that no version package imports
another's.
"""
