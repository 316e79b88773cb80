"""Write recipes_resolved.json: the resolved RunConfig of every recipe in a folder.

    python ut/data/make_recipe_goldens.py --recipes /path/to/ascend_configs

The golden in this folder holds the recipes as they were before they shared a base (see README.md);
ut/test_config.py checks that today's recipes still resolve to these values.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from mindclip.config import to_dict  # noqa: E402
from mindclip.train.config import load_run_config  # noqa: E402


def resolved_recipes(folder):
    """{recipe file name: the resolved RunConfig as a plain dict} for every *.yaml directly in `folder`."""
    names = sorted(n for n in os.listdir(folder) if n.endswith(".yaml"))
    return {name: to_dict(load_run_config(os.path.join(folder, name))) for name in names}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default=os.path.join(ROOT, "ascend_configs"))
    p.add_argument("--out", default=os.path.join(ROOT, "ut", "data", "recipes_resolved.json"))
    args = p.parse_args(argv)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(resolved_recipes(args.recipes), f, indent=1, sort_keys=True)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
