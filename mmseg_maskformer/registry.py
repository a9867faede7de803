"""Registries of mmseg_maskformer.

Every registry here is a child of the matching mmsegmentation registry, so a
config built in the ``mmseg_maskformer`` scope resolves our own modules first and
then mmseg's and mmengine's (ResNet, Swin, ADE20KDataset, IoUMetric, the Runner,
hooks, ...). mmdet modules are reached with the ``mmdet.`` prefix
(``type='mmdet.PackDetInputs'``). Each registry names the package that holds its
modules in ``locations``, so our modules register when a registry is first
queried (together with the parent's locations) and configs need no
``custom_imports``.

Our names never repeat a name mmseg or mmdet registers, so nothing in either
package is shadowed.
"""
import difflib
from typing import Any, List

import mmdet.registry  # noqa: F401  (creates the 'mmdet' scope for 'mmdet.' lookups)
from mmengine.registry import Registry
from mmseg.registry import DATA_SAMPLERS as MMSEG_DATA_SAMPLERS
from mmseg.registry import DATASETS as MMSEG_DATASETS
from mmseg.registry import EVALUATOR as MMSEG_EVALUATOR
from mmseg.registry import HOOKS as MMSEG_HOOKS
from mmseg.registry import INFERENCERS as MMSEG_INFERENCERS
from mmseg.registry import LOG_PROCESSORS as MMSEG_LOG_PROCESSORS
from mmseg.registry import LOOPS as MMSEG_LOOPS
from mmseg.registry import METRICS as MMSEG_METRICS
from mmseg.registry import MODEL_WRAPPERS as MMSEG_MODEL_WRAPPERS
from mmseg.registry import MODELS as MMSEG_MODELS
from mmseg.registry import OPTIM_WRAPPER_CONSTRUCTORS as MMSEG_OPTIM_WRAPPER_CONSTRUCTORS
from mmseg.registry import OPTIM_WRAPPERS as MMSEG_OPTIM_WRAPPERS
from mmseg.registry import OPTIMIZERS as MMSEG_OPTIMIZERS
from mmseg.registry import PARAM_SCHEDULERS as MMSEG_PARAM_SCHEDULERS
from mmseg.registry import RUNNER_CONSTRUCTORS as MMSEG_RUNNER_CONSTRUCTORS
from mmseg.registry import RUNNERS as MMSEG_RUNNERS
from mmseg.registry import TASK_UTILS as MMSEG_TASK_UTILS
from mmseg.registry import TRANSFORMS as MMSEG_TRANSFORMS
from mmseg.registry import VISBACKENDS as MMSEG_VISBACKENDS
from mmseg.registry import VISUALIZERS as MMSEG_VISUALIZERS
from mmseg.registry import WEIGHT_INITIALIZERS as MMSEG_WEIGHT_INITIALIZERS

SCOPE = 'mmseg_maskformer'


def known_names(registry: Registry) -> List[str]:
    """Every type name ``registry`` can build from our scope.

    Names of our registry and its parents as written in a config, and those of
    the other scopes (mmdet, ...) under their ``scope.`` prefix.
    """
    ancestors = _ancestors(registry)
    others: List[Registry] = []
    pending = [ancestors[-1]]
    while pending:  # every registry of this kind in any scope
        node = pending.pop()
        others.extend(node.children.values())
        pending.extend(node.children.values())
    others = [r for r in others if all(r is not a for a in ancestors)]
    for node in ancestors + others:
        node.import_from_location()
    names = {name for node in ancestors for name in node.module_dict}
    names.update(f'{node.scope}.{name}' for node in others for name in node.module_dict)
    return sorted(names)


def _ancestors(registry: Registry) -> List[Registry]:
    chain = [registry]
    while chain[-1].parent is not None:
        chain.append(chain[-1].parent)
    return chain


class SuggestingRegistry(Registry):
    """A registry whose "type not found" error lists the closest known names."""

    def build(self, cfg: dict, *args, **kwargs) -> Any:
        """Build ``cfg``; an unknown ``type`` raises a KeyError with suggestions."""
        try:
            return super().build(cfg, *args, **kwargs)
        except KeyError as error:
            obj_type = cfg.get('type') if isinstance(cfg, dict) else None
            message = str(error.args[0]) if error.args else ''
            if not isinstance(obj_type, str) or not message.startswith(
                    f'{obj_type} is not in the'):
                raise
            names = known_names(self)
            close = difflib.get_close_matches(obj_type, names, n=5, cutoff=0.6)
            close += [n for n in names if n.lower() == obj_type.lower() and n not in close]
            hint = (f'close names: {", ".join(close)}' if close else
                    f'no close name among the {len(names)} known ones')
            raise KeyError(f'unknown {self.name} type {obj_type!r} in the {SCOPE} scope; '
                           f'{hint}') from error


def _child(name: str, parent: Registry, locations: list) -> Registry:
    """A child of ``parent`` that imports our ``locations`` and the parent's.

    mmengine only imports the locations of the registry it is asked, so the
    parent's (e.g. ``mmseg.visualization``) are added here: mmseg modules then
    resolve from our scope without any ``custom_imports``.
    """
    return SuggestingRegistry(name, parent=parent, scope=SCOPE,
                              locations=list(locations) + list(parent._locations))


RUNNERS = _child('runner', MMSEG_RUNNERS, ['mmseg_maskformer.engine'])
RUNNER_CONSTRUCTORS = _child('runner constructor', MMSEG_RUNNER_CONSTRUCTORS,
                             ['mmseg_maskformer.engine'])
LOOPS = _child('loop', MMSEG_LOOPS, ['mmseg_maskformer.engine'])
HOOKS = _child('hook', MMSEG_HOOKS, ['mmseg_maskformer.engine'])
DATASETS = _child('dataset', MMSEG_DATASETS, ['mmseg_maskformer.datasets', 'mmseg_maskformer.engine'])
DATA_SAMPLERS = _child('data sampler', MMSEG_DATA_SAMPLERS,
                       ['mmseg_maskformer.datasets', 'mmseg_maskformer.engine'])
TRANSFORMS = _child('transform', MMSEG_TRANSFORMS, ['mmseg_maskformer.datasets.transforms'])
MODELS = _child('model', MMSEG_MODELS, ['mmseg_maskformer.models'])
MODEL_WRAPPERS = _child('model_wrapper', MMSEG_MODEL_WRAPPERS, ['mmseg_maskformer.models'])
WEIGHT_INITIALIZERS = _child('weight initializer', MMSEG_WEIGHT_INITIALIZERS,
                             ['mmseg_maskformer.models'])
OPTIMIZERS = _child('optimizer', MMSEG_OPTIMIZERS, ['mmseg_maskformer.engine'])
OPTIM_WRAPPERS = _child('optim_wrapper', MMSEG_OPTIM_WRAPPERS, ['mmseg_maskformer.engine'])
OPTIM_WRAPPER_CONSTRUCTORS = _child('optimizer wrapper constructor',
                                    MMSEG_OPTIM_WRAPPER_CONSTRUCTORS,
                                    ['mmseg_maskformer.engine'])
PARAM_SCHEDULERS = _child('parameter scheduler', MMSEG_PARAM_SCHEDULERS,
                          ['mmseg_maskformer.engine'])
METRICS = _child('metric', MMSEG_METRICS, ['mmseg_maskformer.evaluation'])
EVALUATOR = _child('evaluator', MMSEG_EVALUATOR, [])
TASK_UTILS = _child('task util', MMSEG_TASK_UTILS, ['mmseg_maskformer.models'])
VISUALIZERS = _child('visualizer', MMSEG_VISUALIZERS, [])
VISBACKENDS = _child('vis_backend', MMSEG_VISBACKENDS, [])
LOG_PROCESSORS = _child('log_processor', MMSEG_LOG_PROCESSORS, ['mmseg_maskformer.engine'])
INFERENCERS = _child('inferencer', MMSEG_INFERENCERS, [])
