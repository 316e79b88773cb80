"""mindclip's benchmarks: `python -m tools.bench <name> [flags]` from the repository root.

Every benchmark is a module here with a `main(argv)` that tests call in-process; all of them share
`harness` (flags, timer, JSON lines, errors), which needs only NumPy, so that the PyTorch side
imports it too. The synthetic batch and the CC3M caption-length model are `mindclip.data.synthetic`.
"""
import mindclip  # noqa: F401  (sets the oneDNN ISA cap before MindSpore loads; light: no MindSpore)
