"""The papers' own benchmark games (not gridmarl domains), run through the core contract.

``spread``: cooperative navigation, a batched twin of mpe2's ``simple_spread`` with the HGAT
view; ``mpe``: mpe2's own env behind the core contract (needs the ``games`` extra).
"""
