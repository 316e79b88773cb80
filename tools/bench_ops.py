"""Single-op timings, MindSpore (graph mode) against PyTorch (eager), on the shapes of a text tower.

    python tools/bench_ops.py                                   # MindSpore only
    python tools/bench_ops.py --torch-python /work/refvenv/bin/python

The shapes are those of lightclip_mobilenetv2's text MLP at batch 32 x 77 positions: x (2464, 512),
hidden (2464, 2048). Each op is its own compiled graph; best of `--repeat` calls. The PyTorch side
(optional, a separate interpreter with torch) runs the same ops with `--threads` threads. Used in
docs/performance.md to tell what is MindSpore's (kernel speed) from what is ours (the graph).
"""
import argparse
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from mindclip._io import append_json_line  # noqa: E402

ROWS, WIDTH, HIDDEN = 2464, 512, 2048
OPS = ("matmul", "gelu", "gelu_fwd_bwd", "layer_norm", "mul_add")

TORCH_SNIPPET = r"""
import json, sys, time, torch
rows, width, hidden, repeat, threads = (int(a) for a in sys.argv[1:6])
torch.set_num_threads(threads)
g = torch.Generator().manual_seed(0)
x, w = torch.randn(rows, width, generator=g), torch.randn(hidden, width, generator=g)
h = torch.randn(rows, hidden, generator=g)
hg = h.clone().requires_grad_(True)
ln = torch.nn.LayerNorm(hidden)
def gelu_fwd_bwd():
    return torch.autograd.grad(torch.nn.functional.gelu(hg), hg, h)[0]
ops = {"matmul": lambda: x @ w.T, "gelu": lambda: torch.nn.functional.gelu(h),
       "gelu_fwd_bwd": gelu_fwd_bwd, "layer_norm": lambda: ln(h).detach(), "mul_add": lambda: h * 2.0 + 1.0}
out = {}
for name, fn in ops.items():
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter(); fn(); times.append(time.perf_counter() - t0)
    out[name] = round(min(times) * 1000, 2)
print(json.dumps({"torch": torch.__version__, "ms": out}))
"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="PyTorch threads")
    p.add_argument("--torch-python", default=None, help="interpreter with torch for the PyTorch column")
    p.add_argument("--json", default=None, help="append the result as a JSON line to this file")
    return p.parse_args(argv)


def mindspore_cells():
    """name -> a Cell `(x, w, h) -> output` computing that op (each compiles to its own graph)."""
    import numpy as np
    import mindspore as ms
    from mindspore import nn, ops

    class Op(nn.Cell):
        def __init__(self, kind):
            super().__init__()
            self.kind = kind
            self.layer_norm = ops.LayerNorm(begin_norm_axis=-1, begin_params_axis=-1, epsilon=1e-5)
            self.gamma = ms.Tensor(np.ones(HIDDEN, np.float32))
            self.beta = ms.Tensor(np.zeros(HIDDEN, np.float32))

        def construct(self, x, w, h):
            if self.kind == "matmul":
                return ops.matmul(x, w.T)  # (ROWS, HIDDEN)
            if self.kind == "gelu":
                return ops.gelu(h, approximate="none")
            if self.kind == "layer_norm":
                return self.layer_norm(h, self.gamma, self.beta)[0]
            return h * 2.0 + 1.0

    class Gelu(nn.Cell):
        def construct(self, h):
            return ops.gelu(h, approximate="none")

    class GeluGrad(nn.Cell):
        """Forward and backward of the exact GELU, incoming gradient = h."""

        def __init__(self):
            super().__init__()
            self.gelu = Gelu()
            self.grad = ops.GradOperation(sens_param=True)

        def construct(self, x, w, h):
            return self.grad(self.gelu)(h, h)

    return {name: (GeluGrad() if name == "gelu_fwd_bwd" else Op(name)) for name in OPS}


def time_mindspore(repeat):
    import mindspore as ms
    import numpy as np

    ms.set_context(mode=ms.GRAPH_MODE)
    rng = np.random.default_rng(0)
    x, w, h = (ms.Tensor(rng.standard_normal(s).astype(np.float32))
               for s in ((ROWS, WIDTH), (HIDDEN, WIDTH), (ROWS, HIDDEN)))
    out = {}
    for name, cell in mindspore_cells().items():
        cell(x, w, h).asnumpy()
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            cell(x, w, h).asnumpy()
            times.append(time.perf_counter() - t0)
        out[name] = round(min(times) * 1000, 2)
    return out


def time_torch(python, repeat, threads):
    proc = subprocess.run([python, "-c", TORCH_SNIPPET, str(ROWS), str(WIDTH), str(HIDDEN), str(repeat),
                           str(threads)], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{python}: the PyTorch side failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv=None):
    args = parse_args(argv)
    import mindclip  # noqa: F401  (oneDNN ISA cap before mindspore loads)
    import mindspore as ms

    result = {"shapes": {"x": [ROWS, WIDTH], "w": [HIDDEN, WIDTH], "h": [ROWS, HIDDEN]},
              "mindspore": ms.__version__, "mindspore_ms": time_mindspore(args.repeat)}
    if args.torch_python:
        torch_result = time_torch(args.torch_python, args.repeat, args.threads)
        result.update(torch=torch_result["torch"], torch_ms=torch_result["ms"], torch_threads=args.threads)
    print(f"{'op':14s} {'MindSpore ms':>13s}" + (f" {'PyTorch ms':>11s}" if args.torch_python else ""))
    for name in OPS:
        line = f"{name:14s} {result['mindspore_ms'][name]:13.2f}"
        if args.torch_python:
            line += f" {result['torch_ms'][name]:11.2f}"
        print(line)
    print(json.dumps(result))
    append_json_line(args.json, result)
    return result


if __name__ == "__main__":
    main()
