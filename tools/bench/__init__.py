"""mindclip's benchmarks: `python -m tools.bench <name> [flags]` from the repository root.

Every benchmark is a module here with a thin `main(argv)` (its flags, then one call into
`mindclip.bench`, which measures) that tests call in-process; `_cli` holds the one flag vocabulary and
the one-line errors. Both need only NumPy until a benchmark runs, so the PyTorch side imports them too.
"""
import mindclip  # noqa: F401  (sets the oneDNN ISA cap before MindSpore loads; light: no MindSpore)
