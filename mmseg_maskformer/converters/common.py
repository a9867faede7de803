"""Shared pieces of the checkpoint converters.

Every converter is a pure function ``state dict in -> ConversionResult``: the
converted state dict (torch tensors under our key names) plus a report of the
source keys it did not use, so nothing is silently dropped. Buffers that have no
counterpart on purpose (``criterion.empty_weight``, ``num_batches_tracked``...)
are listed separately as ``dropped``.
"""
import os
import re
import sys
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from mmseg_maskformer.apis import init_model
from mmseg_maskformer.utils.atomic_files import atomic_open

#: A renaming rule: a regular expression matched against the whole source key
#: and its replacement (``re.sub`` syntax, ``\1`` for groups).
Rule = Tuple[str, str]


@dataclass
class ConversionResult:
    """A converted state dict and what the conversion did not use.

    Attributes:
        state_dict: Converted tensors under our key names.
        unmatched: Source keys no rule converted (a converter bug or a
            checkpoint of another architecture: always worth reporting).
        dropped: Source keys left out on purpose (training-only buffers).
    """

    state_dict: 'OrderedDict[str, Tensor]' = field(default_factory=OrderedDict)
    unmatched: List[str] = field(default_factory=list)
    dropped: List[str] = field(default_factory=list)

    def merge(self, other: 'ConversionResult', prefix: str = '') -> None:
        """Adds ``other``'s tensors (under ``prefix``) and its reports."""
        for key, value in other.state_dict.items():
            self.state_dict[prefix + key] = value
        self.unmatched.extend(other.unmatched)
        self.dropped.extend(other.dropped)

    def summary(self) -> str:
        """One-paragraph report for logs and CLIs."""
        lines = [f'converted {len(self.state_dict)} tensors; '
                 f'{len(self.unmatched)} unmatched source keys; {len(self.dropped)} dropped']
        if self.unmatched:
            lines.append('unmatched: ' + ', '.join(self.unmatched[:20]) +
                         (' ...' if len(self.unmatched) > 20 else ''))
        return '\n'.join(lines)


def to_tensor(value: Any) -> Tensor:
    """A numpy array, scalar or tensor as a (contiguous, CPU) tensor."""
    if isinstance(value, Tensor):
        return value.detach().cpu().contiguous()
    array = np.ascontiguousarray(np.asarray(value))
    return torch.from_numpy(array.copy())


def apply_rules(state_dict: Mapping[str, Any], rules: Sequence[Rule],
                drop: Iterable[str] = ()) -> ConversionResult:
    """Renames keys by the first matching rule.

    Args:
        state_dict: Source key -> array or tensor.
        rules: ``(pattern, replacement)`` pairs tried in order; a pattern must
            match the whole key (``re.fullmatch``).
        drop: Patterns (``re.fullmatch``) of source keys to leave out on purpose.

    Returns:
        The renamed tensors; keys matching no rule are ``unmatched`` and keys
        matching ``drop`` are ``dropped``.
    """
    compiled = [(re.compile(pattern), repl) for pattern, repl in rules]
    dropped = [re.compile(pattern) for pattern in drop]
    result = ConversionResult()
    for key, value in state_dict.items():
        if any(pattern.fullmatch(key) for pattern in dropped):
            result.dropped.append(key)
            continue
        for pattern, repl in compiled:
            if pattern.fullmatch(key):
                new_key = pattern.sub(repl, key)
                if new_key in result.state_dict:
                    raise ValueError(f'two source keys convert to {new_key!r} (the second is '
                                     f'{key!r}); the rules are ambiguous')
                result.state_dict[new_key] = to_tensor(value)
                break
        else:
            result.unmatched.append(key)
    return result


def unwrap_state_dict(checkpoint: Mapping[str, Any],
                      keys: Sequence[str] = ('state_dict', 'model')) -> Mapping[str, Any]:
    """The weights inside a loaded checkpoint.

    Args:
        checkpoint: A loaded checkpoint dict.
        keys: Wrapper keys tried in order (OpenMMLab files keep the weights
            under ``state_dict``, Detectron2 and sssegmentation under ``model``).

    Returns:
        The first wrapper entry that is a dict, else ``checkpoint`` itself.
    """
    for key in keys:
        if isinstance(checkpoint.get(key), Mapping):
            return checkpoint[key]
    return checkpoint


def compare_with_model(state_dict: Mapping[str, Tensor], model: nn.Module,
                       ignore: Iterable[str] = (r'.*num_batches_tracked',
                                                r'.*relative_position_index')
                       ) -> Dict[str, List[str]]:
    """Keys and shapes of a converted state dict against a model's.

    Args:
        state_dict: Converted tensors.
        model: The model they are meant for.
        ignore: Patterns of model buffers that need not be in the file
            (rebuilt by the model itself).

    Returns:
        ``{'missing': [...], 'unexpected': [...], 'shape_mismatch': [...]}``,
        the last as ``'key: file (..) vs model (..)'`` strings.
    """
    ignored = [re.compile(pattern) for pattern in ignore]
    expected = model.state_dict()
    missing = [key for key in expected
               if key not in state_dict and not any(p.fullmatch(key) for p in ignored)]
    unexpected = [key for key in state_dict if key not in expected]
    mismatch = [f'{key}: file {tuple(state_dict[key].shape)} vs model '
                f'{tuple(expected[key].shape)}'
                for key in state_dict if key in expected
                and tuple(state_dict[key].shape) != tuple(expected[key].shape)]
    return dict(missing=missing, unexpected=unexpected, shape_mismatch=mismatch)


def checkpoint_dict(result: ConversionResult,
                    meta: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The ``{'state_dict': ..., 'meta': ...}`` dict our loaders read."""
    return dict(state_dict=result.state_dict, meta=dict(meta or {}))


def fit_problems(result: ConversionResult, report: Mapping[str, List[str]]) -> List[str]:
    """Report lines for everything that keeps a conversion from fitting a model exactly.

    Args:
        result: The conversion.
        report: :func:`compare_with_model` of its state dict and the model.
    """
    lines = []
    for title, keys in (('unmatched source keys', result.unmatched),
                        ('missing in the file', report['missing']),
                        ('unexpected in the file', report['unexpected']),
                        ('shape mismatches', report['shape_mismatch'])):
        if keys:
            lines.append(f'{len(keys)} {title}:')
            lines.extend(f'    {key}' for key in keys)
    return lines


def save_checkpoint_atomic(obj: Any, path: str) -> None:
    """``torch.save`` to a temporary file next to ``path``, then rename it onto ``path``."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with atomic_open(path, 'wb') as file:
        torch.save(obj, file)


def fit_and_save(result: ConversionResult, config: str, dst: str, meta: Dict[str, Any],
                 allow_partial: bool = False,
                 cfg_options: Optional[Dict[str, Any]] = None) -> int:
    """The last step of the converter tools: check against a config's model, then write.

    Builds the model of ``config``, prints every unmatched, missing, unexpected
    or mis-shaped key, and writes ``{'state_dict', 'meta'}`` atomically to
    ``dst`` unless the conversion does not fit exactly and ``allow_partial`` is
    False.

    Returns:
        The tool's exit status: 0 when written, 1 when refused.
    """
    print(f'building the model of {config}', flush=True)
    model = init_model(config, cfg_options=cfg_options)  # no pretrained weights are loaded
    report = compare_with_model(result.state_dict, model)
    if not report['shape_mismatch']:
        model.load_state_dict(result.state_dict, strict=False)
    issues = fit_problems(result, report)
    if issues:
        print('\n'.join(issues))
        if not allow_partial:
            print(f'error: the checkpoint does not fit the model of {config} exactly; '
                  'nothing written (use --allow-partial to write it anyway)', file=sys.stderr)
            return 1
        print('warning: writing a partial conversion (--allow-partial)', file=sys.stderr)
    else:
        print('all parameters of the model are in the file, with the right shapes')
    meta = dict(meta, config=os.path.basename(config), unmatched=list(result.unmatched),
                dropped=list(result.dropped))
    save_checkpoint_atomic(checkpoint_dict(result, meta), dst)
    print(f'saved {len(result.state_dict)} tensors to {dst}')
    return 0
