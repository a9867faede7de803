"""Count the parameters of the model of a config.

Usage:
    python tools/analysis_tools/get_params.py CONFIG [--cfg-options KEY=VALUE ...]

Builds the model on CPU without loading any weights and prints the number of
parameters in millions: the total, then each top-level submodule (backbone,
neck, decode_head, ...) and, indented, its direct children, e.g.::

    Total params: 44.04 M
      backbone: 23.51 M
      decode_head: 20.53 M
        pixel_decoder: 4.29 M
"""
import argparse
import os.path as osp
from typing import Iterator, Tuple

from mmengine.config import Config, DictAction
from torch import nn

DEFAULT_SCOPE = 'mmseg_maskformer'


def parse_args() -> argparse.Namespace:
    """Parses the command line."""
    parser = argparse.ArgumentParser(
        description='Print the parameter count of the model of a config (no weights '
        'are loaded).')
    parser.add_argument('config', help='path of the config file')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings of the config, as key=value pairs merged into it')
    args = parser.parse_args()
    if not osp.isfile(args.config):
        parser.error(f'config file {args.config} does not exist')
    return args


def count_params(module: nn.Module) -> int:
    """Number of parameters of ``module`` (shared ones counted once)."""
    return sum(param.numel() for param in module.parameters())


def params_table(model: nn.Module) -> Iterator[Tuple[int, str, int]]:
    """Yields ``(depth, name, count)``: the total, top-level children, theirs.

    Children without parameters are left out.
    """
    yield 0, 'Total params', count_params(model)
    for name, child in model.named_children():
        count = count_params(child)
        if count == 0:
            continue
        yield 1, name, count
        for grand_name, grand_child in child.named_children():
            grand_count = count_params(grand_child)
            if grand_count:
                yield 2, grand_name, grand_count


def format_millions(count: int) -> str:
    """``44040000`` -> ``'44.04 M'``."""
    return f'{count / 1e6:.2f} M'


def build_model(cfg: Config) -> nn.Module:
    """Builds ``cfg.model`` in the config's default scope, without weights."""
    from mmengine.registry import init_default_scope

    import mmseg_maskformer  # noqa: F401  (registers our modules)
    from mmseg_maskformer.registry import MODELS
    init_default_scope(cfg.get('default_scope', DEFAULT_SCOPE))
    # Building only constructs the modules: init_weights(), which would fetch
    # init_cfg/pretrained weights, is not called.
    return MODELS.build(cfg.model)


def main() -> None:
    """Prints the parameter counts of the model of the config."""
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = build_model(cfg)
    for depth, name, count in params_table(model):
        print(f'{"  " * depth}{name}: {format_millions(count)}')


if __name__ == '__main__':
    main()
