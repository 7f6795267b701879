"""Statistics: numpy/scipy only, pure functions, no I/O, no clock.

One module per statistical area (as pingouin does); every function documents its formula, its
method and its reference. Randomness comes in as a ``numpy.random.Generator`` argument.
"""
