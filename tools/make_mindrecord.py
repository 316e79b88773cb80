"""Convert image-text pairs (CSV/TSV, JSON-lines, webdataset tars, COCO, Karpathy JSON) to MindRecord.

Examples (docs/data.md has more):
    python tools/make_mindrecord.py cc3m_train.csv --out data/cc3m --csv-img-key filepath --csv-caption-key title
    python tools/make_mindrecord.py "shards/{00000..00099}.tar" --out data/laion --workers 8
    python tools/make_mindrecord.py yfcc15m_meta.jsonl --out data/yfcc --image-root /data/yfcc/images
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import mindclip  # noqa: E402,F401  (sets the environment before mindspore loads)
from mindclip.data.convert import ExistingShardsError, convert_files  # noqa: E402
from mindclip.data.delimited import HeaderError  # noqa: E402
from mindclip.data.sources import FORMATS, InputError, SourceOptions  # noqa: E402
from mindclip.data.validate import RecordOptions  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", help="input files; globs and {000..099} ranges are expanded")
    p.add_argument("--out", required=True, help="output directory for the shards")
    p.add_argument("--prefix", default="train", help="shard name prefix: PREFIX-00000.mindrecord")
    p.add_argument("--format", choices=FORMATS, default=None, help="input format (default: from the extension)")
    p.add_argument("--image-root", default=None, help="root of relative image paths (default: the input's dir)")
    p.add_argument("--csv-img-key", "--img-key", dest="img_key", default=None,
                   help="image path column/key (default: filepath for CSV, filename for JSON-lines)")
    p.add_argument("--csv-caption-key", "--caption-key", dest="caption_key", default=None,
                   help="caption column/key (default: title for CSV, caption for JSON-lines)")
    p.add_argument("--csv-separator", dest="separator", default=None, help="CSV separator (default: tab)")
    p.add_argument("--splits", default=None, help="Karpathy JSON: comma-separated splits, e.g. train,restval")
    p.add_argument("--summary-key", default=None, help="PyramidCLIP: column/key of the text summary")
    p.add_argument("--roi-key", default=None, help="PyramidCLIP: column/key of the ROI .npy path "
                   "(for tars: the KEY.npy member is used when --with-roi is given)")
    p.add_argument("--with-summary", action="store_true", help="store a summary column (implied by --summary-key)")
    p.add_argument("--no-summary-fallback", action="store_true",
                   help="skip a pair whose summary is blank (default: its caption becomes its summary)")
    p.add_argument("--with-roi", action="store_true", help="store ROI columns (implied by --roi-key)")
    p.add_argument("--shard-samples", type=int, default=10000, help="max pairs per shard")
    p.add_argument("--shard-mb", type=float, default=1024, help="max image megabytes per shard (about)")
    p.add_argument("--workers", type=int, default=1, help="processes that decode-check images")
    p.add_argument("--overwrite", action="store_true", help="replace existing PREFIX shards in --out")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    return p.parse_args(argv)


def input_error_line(error):
    """The one line printed for an input that cannot be converted, naming the flags that fix it."""
    if isinstance(error, ExistingShardsError):
        return (f"error: --out {error.out_dir} already holds {len(error.existing)} shard files of --prefix "
                f"{error.prefix} (e.g. {error.existing[0]}); pass --overwrite to replace them, or another --prefix")
    if isinstance(error.__cause__, HeaderError):
        return f"error: {error} (choose them with --csv-img-key / --csv-caption-key / --csv-separator)"
    return f"error: {error}"


def main(argv=None):
    args = parse_args(argv)
    try:
        convert(args)
    except (InputError, ExistingShardsError) as e:
        print(input_error_line(e), file=sys.stderr)
        return 2
    return 0


def convert(args):
    """Run the conversion the parsed flags describe; returns its `ConversionSummary`."""
    if args.separator == "\\t":
        args.separator = "\t"
    source_options = SourceOptions(
        img_key=args.img_key, caption_key=args.caption_key, separator=args.separator, image_root=args.image_root,
        summary_key=args.summary_key, roi_key=args.roi_key,
        splits=tuple(args.splits.split(",")) if args.splits else None)
    record_options = RecordOptions(with_summary=args.with_summary or bool(args.summary_key),
                                   summary_fallback=not args.no_summary_fallback,
                                   with_roi=args.with_roi or bool(args.roi_key))
    return convert_files(args.inputs, args.out, args.prefix, fmt=args.format, source_options=source_options,
                         record_options=record_options, shard_samples=args.shard_samples,
                         shard_bytes=int(args.shard_mb * (1 << 20)), workers=args.workers,
                         progress_every_s=None if args.quiet else 10.0, overwrite=args.overwrite)


if __name__ == "__main__":
    sys.exit(main())
