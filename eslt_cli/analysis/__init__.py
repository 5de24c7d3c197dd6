"""Analyses of trained checkpoints (Section 5 and appendix A.3 of the paper).

- :mod:`~eslt_cli.analysis.lmc`: linear mode connectivity, the error barrier
  along the straight line between two trained networks.
- :mod:`~eslt_cli.analysis.sharpness`: loss along filter-normalised random
  directions (Li et al., 2018): 1D curvature and 2D loss surfaces.

Pure functions over parameter pytrees with explicit keys; no terminal I/O.
"""
