"""The Turing-test survey (issue 6): paired real/fake trials, votes, fool rates.

Not built yet; the package exists so the layout and import boundaries are in place.
"""
