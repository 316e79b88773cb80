"""Write the built-in demo data set (synthetic captioned shapes) and convert it to MindRecord.

    python tools/make_demo_data.py --out demo_out/data
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the environment before mindspore loads)
from mindclip.data.demo import make_demo_data  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="demo_out/data", help="output directory")
    p.add_argument("--n-train", type=int, default=2000, help="training images")
    p.add_argument("--n-val", type=int, default=300, help="held-out images")
    p.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    p.add_argument("--seed", type=int, default=0, help="seed (the data is a function of it)")
    p.add_argument("--pyramid", action="store_true", help="also write summaries and ROI features (PyramidCLIP)")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.time()
    summaries = make_demo_data(args.out, args.n_train, args.n_val, args.image_size, args.seed, pyramid=args.pyramid)
    print(f"demo data in {args.out} ({time.time() - start:.1f} s): shards in {os.path.join(args.out, 'mindrecord')}")
    return summaries


if __name__ == "__main__":
    main()
