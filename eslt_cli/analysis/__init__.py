"""Analyses of trained checkpoints (Section 5 and appendix A.3 of the paper).

- :mod:`~eslt_cli.analysis.lmc`: linear mode connectivity, the error barrier of
  Frankle et al. (2020) along the straight line between two trained networks.
- :mod:`~eslt_cli.analysis.sharpness`: loss along filter-normalised random
  directions (Li et al., 2018): 1D curvature and 2D loss surfaces, with
  directions drawn once at level 0 for comparisons across IMP levels (A.3).

Pure functions over parameter pytrees with explicit keys; no terminal I/O.
"""
