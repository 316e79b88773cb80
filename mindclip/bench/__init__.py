"""The benchmark machinery behind `python -m tools.bench <name>` (tools/bench/ holds only the entry points:
argparse, then one call here). Each benchmark is a module that takes plain arguments and returns its
result as a dict (one JSON line).

At the top of the dependency graph: it may import data, models, train, ops and eval; nothing in the
package imports it. `import mindclip.bench` loads nothing: each module imports MindSpore or torch itself.

    harness           errors, the timer (host sync), peak memory, JSON lines, the batch a benchmark
                      feeds (`BatchSpec`), the step pieces' names. NumPy only: the PyTorch side imports it
                      (as it does `mindclip.data.synthetic`: the synthetic batch, the CC3M caption lengths)
    train, pieces     the trainer's step timed whole, and in pieces (each its own graph)
    infer             the inference towers (graph, PyNative, exported MINDIR) and host preprocessing
    data              the training pipeline's images/s on photo-like JPEGs
    hungarian, ops    the host Hungarian matcher alone and as a graph op; single MindSpore ops
    buckets           how batches fall into text-length buckets
    side_by_side      the batch both sides get, and the row that compares them

The PyTorch side runs only under a PyTorch interpreter (torch, open_clip_torch, timm, pillow, scipy);
MindSpore-side code and CI tests never import it: `torchvision_stub` (open_clip without torchvision),
`torch_model` (lightclip_mobilenetv2 rebuilt from open_clip parts), `lightclip_torch` (the port of the
LightCLIP objective), `torch_reference` (open_clip's train step, FLOP count), `torch_pieces`.
"""
