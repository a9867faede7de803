"""Shared pieces of the checkpoint converters.

Every converter is a pure function ``state dict in -> ConversionResult``: the
converted state dict (torch tensors under our key names) plus a report of the
source keys it did not use, so nothing is silently dropped. Buffers that have no
counterpart on purpose (``criterion.empty_weight``, ``num_batches_tracked``...)
are listed separately as ``dropped``.
"""
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import Tensor, nn

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
