"""Write recipes_flat.json: every recipe of a folder as one flat mapping (its `_base_` chain merged in).

    python ut/data/make_recipe_goldens.py --recipes /path/to/ascend_configs

The file in this folder holds the recipes as they were before they shared a base (see README.md);
ut/test_config.py checks that today's recipes resolve to the same RunConfig as these mappings.
"""
import argparse
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)

from mindclip.config import read_yaml  # noqa: E402


def flat_recipes(folder):
    """{recipe file name: its mapping, bases merged} for every *.yaml directly in `folder`."""
    names = sorted(n for n in os.listdir(folder) if n.endswith(".yaml"))
    return {name: read_yaml(os.path.join(folder, name)) for name in names}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipes", default=os.path.join(ROOT, "ascend_configs"))
    p.add_argument("--out", default=os.path.join(ROOT, "ut", "data", "recipes_flat.json"))
    args = p.parse_args(argv)
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(flat_recipes(args.recipes), f, indent=1)
        f.write("\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
