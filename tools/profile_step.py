"""Where a train step's time goes: each piece compiled and timed as a graph of its own.

    python tools/profile_step.py --model lightclip_mobilenetv2 --batch 32 --image-size 224
    python tools/profile_step.py --model lightclip_mobilenetv2 --method lightclip --text-length 32

Pieces (forward + backward unless said otherwise, fixed random inputs, graph mode):
  image_tower      the image tower to the pooled, projected features
  text_tower       the text tower (token table included) to the EOT-pooled features
  token_table      only the token lookup and its (49408 x W) table gradient
  text_no_table    the text tower with a frozen token table (difference = the table gradient)
  inst_loss        the instance loss on fixed features (soft targets)
  token_loss       token-alignment loss (with the host Hungarian op) on fixed tokens   [lightclip]
  mlm_branch       the masked-text pass, fusion and both MLM heads with their losses      [lightclip]
  optimizer        AdamW over every trainable weight, forward only
  train_step       the trainer's whole step (tools/bench_train.py measures the same)
The sum of the parts is compared with the whole step: the difference is what the step adds (or
saves by sharing work). Data loading is excluded (tools/bench_data.py).
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401
from mindclip._io import append_json_line  # noqa: E402

PIECES = ("image_tower", "text_tower", "token_table", "text_no_table", "inst_loss", "token_loss",
          "mlm_branch", "optimizer", "train_step")
LIGHTCLIP_ONLY = ("token_loss", "mlm_branch")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="lightclip_mobilenetv2")
    p.add_argument("--method", default="clip", choices=["clip", "lightclip"])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--image-size", type=int, default=None, help="default: the preset's")
    p.add_argument("--text-length", type=int, default=77)
    p.add_argument("--steps", type=int, default=3, help="timed runs per piece")
    p.add_argument("--pieces", default=",".join(PIECES), help="comma-separated subset of: " + ", ".join(PIECES))
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", default=None, help="append the result as a JSON line to this file")
    return p.parse_args(argv)


def _sum_cell(ms, nn, ops):
    class WeightedSum(nn.Cell):
        """(net(*inputs) * fixed weights).sum(): a scalar whose gradient reaches every output."""

        def __init__(self, net, first_output_only=False):
            super().__init__()
            self.net = net
            self.first = first_output_only

        def construct(self, *inputs):
            out = self.net(*inputs)
            if self.first:
                out = out[0]
            return (out * ops.sin(ops.arange(out.size, dtype=out.dtype).reshape(out.shape))).sum()

    return WeightedSum


def _grad_runner(ms, nn, ops, loss_cell, params):
    class Backward(nn.Cell):
        def __init__(self):
            super().__init__()
            self.loss = loss_cell
            self.params = ms.ParameterTuple(params)
            self.grad = ops.GradOperation(get_by_list=True)

        def construct(self, *inputs):
            return self.grad(self.loss, self.params)(*inputs)

    return Backward()


def build_pieces(args, cfg, clip, objective, step, batch):
    """name -> (cell, inputs) for every requested piece."""
    import mindspore as ms
    import numpy as np
    from mindspore import nn, ops

    from mindclip.losses import token_alignment_loss, text_word_mask, mlm_loss
    from mindclip.train.objectives import instance_loss_from

    WeightedSum = _sum_cell(ms, nn, ops)
    rng = np.random.default_rng(1)
    images, tokens = batch[0], batch[1]
    pieces = {}

    def grad_piece(name, net, inputs, params):
        pieces[name] = (_grad_runner(ms, nn, ops, net, params), inputs)

    grad_piece("image_tower", WeightedSum(clip.visual), [images], clip.visual.trainable_params())
    grad_piece("text_tower", WeightedSum(clip.text), [tokens], clip.text.trainable_params())
    table = clip.text.token_embedding

    class Lookup(nn.Cell):
        def __init__(self):
            super().__init__()
            self.table = table

        def construct(self, ids):
            return ops.gather(self.table, ids, 0)  # (B, L, W)

    grad_piece("token_table", WeightedSum(Lookup()), [tokens], [table])
    grad_piece("text_no_table", WeightedSum(clip.text), [tokens],
               [p for p in clip.text.trainable_params() if p is not table])

    embed = clip.embed_dim
    feats = [ms.Tensor(rng.standard_normal((args.batch, embed)).astype(np.float32)) for _ in range(2)]
    inst = instance_loss_from(cfg.loss)

    class InstOnly(nn.Cell):
        def __init__(self):
            super().__init__()
            self.loss = inst

        def construct(self, a, b):
            a = a / ops.norm(a, dim=-1, keepdim=True)
            b = b / ops.norm(b, dim=-1, keepdim=True)
            return self.loss(a, b, ms.Tensor(14.28, ms.float32), ms.Tensor(0.7, ms.float32))

    pieces["inst_loss"] = (ops.GradOperation(get_all=True)(InstOnly()), feats)
    if args.method == "lightclip":
        grid = (clip.config.image.image_size // 32) ** 2
        image_tok = ms.Tensor(rng.standard_normal((args.batch, grid, embed)).astype(np.float32))
        text_tok = ms.Tensor(rng.standard_normal((args.batch, tokens.shape[1], embed)).astype(np.float32))

        class TokenOnly(nn.Cell):
            def construct(self, a, b, ids):
                return token_alignment_loss(a, b, text_word_mask(ids))

        pieces["token_loss"] = (ops.GradOperation(get_all=True)(TokenOnly()), [image_tok, text_tok, tokens])
        pretrain = objective.model

        class MlmBranch(nn.Cell):
            """Image stages as fixed inputs; the masked-text pass, fusion, heads and MLM losses."""

            def __init__(self):
                super().__init__()
                self.pretrain = pretrain

            def construct(self, s0, s1, s2, s3, mlm_tokens, mlm_positions, mlm_labels):
                text_logits, fuse_logits = self.pretrain._mlm_outputs((s0, s1, s2, s3), mlm_tokens, mlm_positions)
                return (mlm_loss(text_logits, mlm_labels) + mlm_loss(fuse_logits, mlm_labels)) / 2

        stages = clip.visual.forward_stages(images)
        stage_inputs = [ms.Tensor(s.asnumpy()) for s in stages]
        mlm_params = [p for p in pretrain.trainable_params()
                      if not p.name.startswith("clip.visual") and "image_token_proj" not in p.name]
        pieces["mlm_branch"] = (_grad_runner(ms, nn, ops, MlmBranch(), mlm_params), stage_inputs + list(batch[2:]))
    grads = tuple(ms.Tensor(rng.standard_normal(p.shape).astype(np.float32) * 1e-3) for p in step.weights)
    optimizer = step.optimizer

    class OptimizerOnly(nn.Cell):
        def __init__(self):
            super().__init__()
            self.optimizer = optimizer

        def construct(self, lr, *g):
            return self.optimizer(g, lr)

    pieces["optimizer"] = (OptimizerOnly(), [ms.Tensor(1e-8, ms.float32)] + list(grads))
    pieces["train_step"] = (step, [ms.Tensor(1e-8, ms.float32), ms.Tensor(0.7, ms.float32), ms.Tensor(True)]
                            + list(batch))
    return pieces


def time_piece(cell, inputs, steps):
    """(first call incl. compile, median of `steps` later calls) in seconds."""
    import numpy as np

    def call():
        out = cell(*inputs)
        leaves = out if isinstance(out, (tuple, list)) else (out,)
        for leaf in leaves:
            if hasattr(leaf, "asnumpy"):
                leaf.asnumpy()
                break

    t0 = time.perf_counter()
    call()
    first = time.perf_counter() - t0
    call()  # warm-up
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        call()
        times.append(time.perf_counter() - t0)
    return first, float(np.median(times))


def main(argv=None):
    args = parse_args(argv)
    import mindspore as ms
    import numpy as np

    from bench_train import bench_config, synthetic_batch
    from mindclip.train.networks import build_objective
    from mindclip.train.step import TrainStep
    from mindclip.train.trainer import build_optimizer

    wanted = [p.strip() for p in args.pieces.split(",") if p.strip()]
    unknown = sorted(set(wanted) - set(PIECES))
    if unknown:
        raise SystemExit(f"--pieces: unknown {unknown}; choose from {PIECES}")
    if args.method == "clip":
        wanted = [p for p in wanted if p not in LIGHTCLIP_ONLY]
    cfg = bench_config(args)
    ms.set_context(mode=ms.GRAPH_MODE, device_target=cfg.train.device_target)
    ms.set_seed(0)
    clip, objective = build_objective(cfg)
    objective.model.set_train(True)
    optimizer = build_optimizer(cfg.optim, objective.model)
    step = TrainStep(objective, optimizer, clip.logit_scale, loss_scale=cfg.train.loss_scale)
    batch = synthetic_batch(cfg.method, clip, args.batch, args.text_length, np.random.default_rng(0))
    pieces = build_pieces(args, cfg, clip, objective, step, batch)
    rows = {}
    for name in wanted:
        first, median = time_piece(*pieces[name], args.steps)
        rows[name] = {"step_s": round(median, 3), "compile_s": round(first - median, 2)}
        print(f"{name:14s} {median:8.3f} s   (compile {first - median:6.1f} s)", flush=True)
    result = {"model": args.model, "method": args.method, "batch": args.batch,
              "image_size": clip.config.image.image_size, "text_length": args.text_length,
              "overrides": args.overrides, "pieces": rows}
    print(json.dumps(result))
    append_json_line(args.json, result)
    return result


if __name__ == "__main__":
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    main()
