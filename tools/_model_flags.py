"""The flags every tool that loads a model shares (eval, export, visualize): one wording, one meaning."""


def add_model_flags(parser, set_example="image.image_size=224"):
    """--model (a preset), --checkpoint (none = random weights), --set KEY=VALUE (preset overrides)."""
    parser.add_argument("--model", required=True, help="model preset (mindclip.list_models())")
    parser.add_argument("--checkpoint", default=None, help="model or training checkpoint; none = random weights")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help=f"model preset override, e.g. --set {set_example} (repeatable)")
